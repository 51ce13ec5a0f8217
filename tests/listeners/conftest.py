"""Fixtures for the listener tests (defined in helpers.py)."""
from .helpers import clients, pki  # noqa: F401
