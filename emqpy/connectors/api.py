"""REST pieces the authentication and authorization APIs share: their service on the broker,
one entry of it, and EMQX's per-node status of a connector-backed authenticator or source."""
from __future__ import annotations

from typing import Any

from emqpy.api.errors import ApiError, error_responses

E400 = error_responses({400: ["BAD_REQUEST"]})
E404 = error_responses({404: ["NOT_FOUND"]})
E400_404 = error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]})
E409 = error_responses({409: ["ALREADY_EXISTS"]})
E503 = error_responses({503: ["SERVICE_UNAVAILABLE"]})  # every route that asks `service`


def service(svc, what: str):
    """`svc` (broker.authn, broker.authz); 503 while that feature is not running."""
    if svc is None:
        raise ApiError(503, "SERVICE_UNAVAILABLE", f"{what} is not running")
    return svc


def entry(svc, key: str, not_found: type[Exception], message: str):
    """`svc.get(key)`; 404 NOT_FOUND "<message>: <key>" when it raises `not_found`."""
    try:
        return svc.get(key)
    except not_found:
        raise ApiError(404, "NOT_FOUND", f"{message}: {key}") from None


def move(svc, key: str, position: str, not_found: type[Exception], message: str,
         invalid: type[Exception]) -> None:
    """`svc.move(key, position)`: 404 as `entry` for an unknown entry (this one or the one
    `position` names), 400 BAD_REQUEST for a position `svc` calls `invalid`."""
    entry(svc, key, not_found, message)
    try:
        svc.move(key, position)
    except not_found as e:
        raise ApiError(404, "NOT_FOUND", f"{message}: {e}") from None
    except invalid as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None


def status_body(node: str, status: str, metrics: dict, matched: int, success: int,
                failed: int, error: str | None = None) -> dict[str, Any]:
    """EMQX's status answer for one node: the entry's own metrics and its resource's (each
    check of the entry is a request to its resource: the resource's rates are the entry's)."""
    res = {"matched": matched, "success": success, "failed": failed,
           "rate": metrics.get("rate", 0.0), "rate_max": metrics.get("rate_max", 0.0),
           "rate_last5m": metrics.get("rate_last5m", 0.0)}
    return {"status": status, "metrics": metrics, "resource_metrics": res,
            "node_status": [{"node": node, "status": status}],
            "node_metrics": [{"node": node, "metrics": metrics}],
            "node_resource_metrics": [{"node": node, "metrics": res}],
            "node_error": [{"node": node, "error": error}] if error else []}
