"""Raised by a check (e.g. authorization) that needs I/O (http, redis, postgresql sources).

The channel catches it, stops reading from that client, awaits `awaitable` (which leaves the
answer where the check finds it) and replays the packet: the second check answers at once
(Channel.wait_for_io, which an asynchronous authentication uses too).
"""
from __future__ import annotations


class Deferred(Exception):
    def __init__(self, awaitable):
        super().__init__("authorization needs I/O")
        self.awaitable = awaitable
