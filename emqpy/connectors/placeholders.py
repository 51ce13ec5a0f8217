"""EMQX `${var}` placeholders in authenticator/authorizer templates (URLs, bodies, commands,
queries)."""
from __future__ import annotations

import re

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def client_vars(ch, password: str | None = None, **extra) -> dict:
    attrs = getattr(ch, "client_attrs", None) or {}
    cert = getattr(ch, "_peer_cert", None) or {}
    out = {
        "clientid": ch.clientid or "", "username": ch.username or "",
        "peerhost": ch.peerhost or "", "peerport": str(ch.peerport or ""),
        "cert_subject": cert.get("subject", "") if isinstance(cert, dict) else "",
        "cert_common_name": cert.get("common_name", "") if isinstance(cert, dict) else "",
    }
    if password is not None:
        out["password"] = password
    for k, v in attrs.items():
        out["client_attrs." + k] = str(v)
    out.update({k: "" if v is None else str(v) for k, v in extra.items()})
    return out


def render(template: str, variables: dict) -> str:
    """Replace known placeholders; unknown ones become empty, as EMQX renders undefined vars."""
    return VAR.sub(lambda m: variables.get(m.group(1), ""), template)


def render_obj(obj, variables: dict):
    if isinstance(obj, str):
        return render(obj, variables)
    if isinstance(obj, dict):
        return {render(str(k), variables): render_obj(v, variables) for k, v in obj.items()}
    if isinstance(obj, list):
        return [render_obj(v, variables) for v in obj]
    return obj
