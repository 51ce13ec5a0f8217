"""Retained messages (EMQX's emqx_retainer)."""
