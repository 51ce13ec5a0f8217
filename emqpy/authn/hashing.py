"""Password hashing exactly as EMQX's built-in database stores it, so exported users work.

Simple hashes are hex digests of salt+password (prefix) or password+salt (suffix); `plain`
stores the (salted) password itself; pbkdf2 stores the hex derived key; bcrypt stores the full
bcrypt string with its salt kept separately as EMQX does.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

import bcrypt

SIMPLE = ("plain", "md5", "sha", "sha256", "sha512")
_HASHLIB = {"md5": "md5", "sha": "sha1", "sha224": "sha224", "sha256": "sha256",
            "sha384": "sha384", "sha512": "sha512", "md4": "md4", "ripemd160": "ripemd160"}


def validate_algorithm(alg: dict) -> dict:
    """Normalise a `password_hash_algorithm` object; ValueError names what is wrong."""
    if not isinstance(alg, dict):
        raise ValueError("password_hash_algorithm: an object is expected")
    name = alg.get("name")
    if name in SIMPLE:
        pos = alg.get("salt_position", "prefix")
        if pos not in ("prefix", "suffix", "disable"):
            raise ValueError(f"password_hash_algorithm.salt_position: bad value {pos!r}")
        return {"name": name, "salt_position": pos}
    if name == "bcrypt":
        rounds = alg.get("salt_rounds", 10)
        if not isinstance(rounds, int) or isinstance(rounds, bool) or not 5 <= rounds <= 10:
            raise ValueError("password_hash_algorithm.salt_rounds: an integer 5..10 is expected")
        return {"name": "bcrypt", "salt_rounds": rounds}
    if name == "pbkdf2":
        mac = alg.get("mac_fun")
        if mac not in _HASHLIB:
            raise ValueError(f"password_hash_algorithm.mac_fun: bad value {mac!r}")
        it = alg.get("iterations")
        if not isinstance(it, int) or isinstance(it, bool) or it < 1:
            raise ValueError("password_hash_algorithm.iterations: a positive integer is required")
        out = {"name": "pbkdf2", "mac_fun": mac, "iterations": it}
        dk = alg.get("dk_length")
        if dk is not None:
            if not isinstance(dk, int) or isinstance(dk, bool) or dk < 1:
                raise ValueError("password_hash_algorithm.dk_length: a positive integer")
            out["dk_length"] = dk
        return out
    raise ValueError(f"password_hash_algorithm.name: unknown algorithm {name!r}")


def is_slow(alg: dict) -> bool:
    """bcrypt and pbkdf2 take milliseconds: run them off the event loop."""
    return alg["name"] in ("bcrypt", "pbkdf2")


def gen_salt(alg: dict) -> str:
    name = alg["name"]
    if name == "bcrypt":
        return bcrypt.gensalt(alg.get("salt_rounds", 10)).decode()
    if name in SIMPLE and alg.get("salt_position") == "disable":
        return ""
    return secrets.token_hex(16)  # 32 hex characters, EMQX's salt shape


def hash_password(alg: dict, password: str, salt: str) -> str:
    pw = password.encode()
    s = salt.encode()
    name = alg["name"]
    if name == "bcrypt":
        return bcrypt.hashpw(pw, s).decode()
    if name == "pbkdf2":
        digest = _HASHLIB[alg["mac_fun"]]
        dk = alg.get("dk_length") or hashlib.new(digest).digest_size
        return hashlib.pbkdf2_hmac(digest, pw, s, alg["iterations"], dk).hex()
    pos = alg.get("salt_position", "prefix")
    data = s + pw if pos == "prefix" else pw + s if pos == "suffix" else pw
    if name == "plain":
        return data.decode()
    return hashlib.new(_HASHLIB[name], data).hexdigest()


def check_password(alg: dict, password: str, salt: str, password_hash: str) -> bool:
    if alg["name"] == "bcrypt":
        try:  # the stored hash carries its own salt
            return bcrypt.checkpw(password.encode(), password_hash.encode())
        except ValueError:
            return False
    try:
        computed = hash_password(alg, password, salt or "")
    except (ValueError, TypeError):
        return False
    if alg["name"] != "plain":  # EMQX compares hex case-insensitively via binary hex form
        computed, password_hash = computed.lower(), (password_hash or "").lower()
    return hmac.compare_digest(computed.encode(), (password_hash or "").encode())
