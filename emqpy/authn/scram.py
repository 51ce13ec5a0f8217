"""`scram:built_in_database`: MQTT 5 enhanced authentication with SCRAM-SHA-256/512
(RFC 5802 / RFC 7677) over CONNECT / AUTH / CONNACK.

Users are kept like the built-in database's, but what is stored is SCRAM's StoredKey and
ServerKey (never the password): `password_hash` = "storedkey_hex:serverkey_hex", `salt` = hex.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from emqpy.authn.builtin import BuiltinDB, UserError
from emqpy.mqtt import reason_codes as rc

METHODS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def derive_keys(alg: str, password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac(alg, password.encode(), salt, max(iterations, 1))
    client_key = hmac.new(salted, b"Client Key", alg).digest()
    stored_key = hashlib.new(alg, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", alg).digest()
    return stored_key, server_key


def _attrs(msg: str) -> dict:
    out = {}
    for part in msg.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ValueError(f"bad SCRAM attribute {part!r}")
        out[part[0]] = part[2:]
    return out


def _saslname(name: str) -> str:
    if "=" in name.replace("=2C", "").replace("=3D", ""):
        raise ValueError("bad saslname escape")
    return name.replace("=2C", ",").replace("=3D", "=")


class ScramDB(BuiltinDB):
    def __init__(self, broker, cfg: dict):
        cfg = dict(cfg)
        super().__init__(broker, {**cfg, "password_hash_algorithm": {"name": "plain"}})
        self.cfg = cfg
        self.alg = cfg.get("algorithm", "sha256")
        self.iterations = cfg.get("iteration_count", 4096)
        self.method = "SCRAM-SHA-256" if self.alg == "sha256" else "SCRAM-SHA-512"
        self.by = "username"

    def check(self, ch, pkt):
        return None  # only enhanced authentication (AUTH packets) can use SCRAM users

    def _hash(self, password: str) -> tuple[str, str]:
        salt = secrets.token_bytes(16)
        stored, server = derive_keys(self.alg, password, salt, self.iterations)
        return f"{stored.hex()}:{server.hex()}", salt.hex()

    def import_users(self, *a, **kw):
        raise UserError("importing users is supported by password_based:built_in_database only")

    # -- the exchange ----------------------------------------------------------------------

    def first(self, data: bytes | None):
        """client-first-message -> ("continue", server-first, state) or a reason code."""
        try:
            msg = (data or b"").decode()
            gs2, _, bare = msg.partition(",")
            authzid, _, bare = bare.partition(",")
            if gs2 not in ("n", "y") or not bare:
                return rc.BAD_AUTHENTICATION_METHOD if gs2.startswith("p") else rc.NOT_AUTHORIZED
            a = _attrs(bare)
            user, cnonce = _saslname(a["n"]), a["r"]
        except (UnicodeDecodeError, ValueError, KeyError):
            return rc.NOT_AUTHORIZED
        row = self.store.query_one("SELECT password_hash, salt, is_superuser FROM authn_users "
                                   "WHERE grp=? AND user_id=?", (self.group, user))
        if row is None:
            self.metrics.count(rc.NOT_AUTHORIZED)
            return rc.NOT_AUTHORIZED
        nonce = cnonce + base64.b64encode(secrets.token_bytes(18)).decode()
        salt = bytes.fromhex(row["salt"])
        server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={self.iterations}"
        state = {"bare": bare, "server_first": server_first, "nonce": nonce,
                 "gs2": f"{gs2},{authzid},", "row": dict(row)}
        return ("continue", server_first.encode(), state)

    def final(self, data: bytes | None, state: dict):
        """client-final-message -> {"is_superuser", "auth_data": server-final} or a code."""
        try:
            msg = (data or b"").decode()
            without_proof, _, proof_part = msg.rpartition(",p=")
            a = _attrs(without_proof)
            proof = base64.b64decode(proof_part, validate=True)
            ok = a["r"] == state["nonce"] and \
                base64.b64decode(a["c"]) == state["gs2"].encode()
        except (UnicodeDecodeError, ValueError, KeyError, binascii.Error):
            ok, proof = False, b""
        stored_hex, _, server_hex = state["row"]["password_hash"].partition(":")
        stored, server = bytes.fromhex(stored_hex), bytes.fromhex(server_hex)
        auth_msg = f"{state['bare']},{state['server_first']},{without_proof if ok else ''}"
        if ok and len(proof) == len(stored):
            sig = hmac.new(stored, auth_msg.encode(), self.alg).digest()
            client_key = bytes(x ^ y for x, y in zip(proof, sig))
            ok = hmac.compare_digest(hashlib.new(self.alg, client_key).digest(), stored)
        else:
            ok = False
        if not ok:
            self.metrics.count(rc.BAD_USERNAME_OR_PASSWORD)
            return rc.BAD_USERNAME_OR_PASSWORD
        server_sig = hmac.new(server, auth_msg.encode(), self.alg).digest()
        result = {"is_superuser": bool(state["row"]["is_superuser"]),
                  "auth_data": b"v=" + base64.b64encode(server_sig)}
        self.metrics.count(result)
        return result


class EnhancedAuth:
    """What the channel calls for CONNECTs that carry an Authentication Method."""

    def __init__(self, chain):
        self.chain = chain

    def _for(self, method: str):
        for a in self.chain.authenticators:
            if isinstance(a, ScramDB) and a.enable and a.method == method:
                return a
        return None

    def start(self, ch, pkt, method: str, data):
        a = self._for(method)
        if a is None:
            return rc.BAD_AUTHENTICATION_METHOD
        res = a.first(data)
        if isinstance(res, tuple):
            return (res[0], res[1], (a, res[2]))
        return res

    def step(self, ch, data, state):
        a, st = state
        if a not in self.chain.authenticators or not a.enable:
            return rc.NOT_AUTHORIZED
        return a.final(data, st)
