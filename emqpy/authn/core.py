"""The authentication chain: ordered authenticators, first definite answer wins.

Each authenticator's `check(ch, pkt)` answers None (ignore: ask the next one), a reason code
(deny), or a dict (allow, with `is_superuser`), or an awaitable of those. The chain stays
synchronous until an authenticator needs I/O, so the common built-in case costs no task.
"""
from __future__ import annotations

import abc
import inspect
import logging

from emqpy.mqtt import reason_codes as rc
from emqpy.rates import RateMeter

log = logging.getLogger("emqpy.authn")

def moved(items: list, item, position: str, find, not_found: type[Exception]) -> list | None:
    """`items` with `item` at EMQX's `position` (front, rear, before:<id>, after:<id>), also
    for authorization sources; `find(id)` is the other entry or None (raises `not_found(id)`).
    None when `position` is none of those."""
    rest = [x for x in items if x is not item]
    if position == "front":
        rest.insert(0, item)
    elif position == "rear":
        rest.append(item)
    elif position.startswith(("before:", "after:")):
        where, other = position.split(":", 1)
        target = find(other)
        if target is None or target is item:
            raise not_found(other)
        i = rest.index(target)
        rest.insert(i if where == "before" else i + 1, item)
    else:
        return None
    return rest


def authenticator_id(cfg: dict) -> str:
    mech = cfg.get("mechanism")
    backend = cfg.get("backend")
    return f"{mech}:{backend}" if backend else str(mech)


class Metrics:
    """An authenticator's counters, and the rate of `total` (sampled by the authn service
    every `rates.SAMPLING` seconds, as EMQX's metrics worker does)."""
    __slots__ = ("total", "success", "failed", "nomatch", "meter")

    def __init__(self):
        self.total = self.success = self.failed = self.nomatch = 0
        self.meter = RateMeter()

    def count(self, result) -> None:
        self.total += 1
        if result is None:
            self.nomatch += 1
        elif isinstance(result, dict):
            self.success += 1
        else:
            self.failed += 1

    def as_dict(self) -> dict:
        return {"total": self.total, "success": self.success, "failed": self.failed,
                "nomatch": self.nomatch, **self.meter.view()}


class Authenticator(abc.ABC):
    """Base class: subclasses set `self.cfg` (normalised config) and implement `check`."""

    needs_resource = False  # True for backends with a connection (status reflects reachability)

    def __init__(self, broker, cfg: dict):
        self.broker = broker
        self.cfg = cfg
        self.id = authenticator_id(cfg)
        self.metrics = Metrics()
        self.last_error: str | None = None

    @property
    def enable(self) -> bool:
        return self.cfg.get("enable", True)

    @abc.abstractmethod
    def check(self, ch, pkt):
        """None (no opinion), a reason code, a dict of auth facts, or an awaitable of those."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def destroy(self) -> None:
        """The authenticator is removed from the chain for good (drop its data)."""
        await self.close()

    async def health(self) -> bool:
        return True

    async def status(self) -> str:
        if not self.enable:
            return "disconnected"
        try:
            return "connected" if await self.health() else "disconnected"
        except Exception as e:  # a broken backend is reported, never raised
            self.last_error = str(e)
            return "disconnected"


def credentials(pkt) -> tuple[str | None, str | None]:
    pw = pkt.password
    if isinstance(pw, (bytes, bytearray)):
        pw = bytes(pw).decode("utf-8", "replace")
    return pkt.username, pw


class Chain:
    def __init__(self, broker):
        self.broker = broker
        self.authenticators: list[Authenticator] = []

    def get(self, aid: str) -> Authenticator | None:
        for a in self.authenticators:
            if a.id == aid:
                return a
        return None

    def authenticate(self, ch, pkt):
        """The broker's authenticator hook. Its final answer is reported to
        `client.check_authn_complete` callbacks, when there are any."""
        res = self._authenticate(ch, pkt)
        if "client.check_authn_complete" not in self.broker.hooks._points:
            return res
        if inspect.isawaitable(res):
            return self._report_later(res, ch)
        self._report(ch, res)
        return res

    async def _report_later(self, pending, ch):
        res = await pending
        self._report(ch, res)
        return res

    def _report(self, ch, res) -> None:
        """`client.check_authn_complete`: (channel, reason_code, is_superuser, is_anonymous),
        the reason as EMQX names it (``success``, ``bad_username_or_password``, ...)."""
        anonymous = False
        if isinstance(res, dict):
            code, superuser = "success", bool(res.get("is_superuser", False))
        elif not res:
            code, superuser = "success", False
            anonymous = self._anonymous(ch)
        else:
            code, superuser = rc.emqx_name(res), False
        self.broker.hooks.run("client.check_authn_complete", ch, code, superuser, anonymous)

    def _anonymous(self, ch) -> bool:
        """A client let in without any authenticator asked (none enabled)."""
        return not any(a.enable for a in self.authenticators)

    def _authenticate(self, ch, pkt):
        active = None
        if self.authenticators:
            lst = getattr(ch.listener, "cfg", None)
            enable_authn = getattr(lst, "enable_authn", True) if lst is not None else True
            if enable_authn is False:
                return 0
            active = [a for a in self.authenticators if a.enable]
        if not active:  # none (enabled): everyone may connect, as EMQX's default
            c = self.broker.metrics.c
            c["client.auth.anonymous"] += 1
            c["authentication.success.anonymous"] += 1
            return 0
        if enable_authn == "quick_deny_anonymous" and not pkt.username and not pkt.password:
            return rc.NOT_AUTHORIZED
        for i, a in enumerate(active):
            res = self._safe(a, ch, pkt)
            if inspect.isawaitable(res):
                return self._continue(res, a, active[i + 1:], ch, pkt)
            a.metrics.count(res)
            if res is not None:
                return res
        return rc.NOT_AUTHORIZED  # every authenticator ignored the client

    @staticmethod
    def _safe(a, ch, pkt):
        try:
            return a.check(ch, pkt)
        except Exception as e:
            a.last_error = str(e)
            log.warning("authenticator %s failed: %s", a.id, e)
            return None

    async def _continue(self, pending, a, rest, ch, pkt):
        for nxt in [None, *rest]:
            if nxt is not None:
                a, pending = nxt, self._safe(nxt, ch, pkt)
            res = pending
            if inspect.isawaitable(pending):
                try:
                    res = await pending
                except Exception as e:  # an unreachable backend means "ignore", never a crash
                    a.last_error = str(e)
                    log.warning("authenticator %s failed: %s", a.id, e)
                    res = None
            a.metrics.count(res)
            if res is not None:
                return res
        return rc.NOT_AUTHORIZED
