"""Password hashes and API keys: salted scrypt for passwords chosen by people, SHA-256 for 256-bit random keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from assistant.core.errors import DataError, InputError

__all__ = ["API_KEY_START", "MIN_PASSWORD_CHARS", "check_hash_format", "hash_password", "key_digest", "new_api_key", "verify_password"]

MIN_PASSWORD_CHARS = 8  # NIST SP 800-63B's minimum for a password chosen by its user
# scrypt cost: 16 MiB of memory and ~50 ms per check, OWASP's minimum for scrypt.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
API_KEY_START = "cc-"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of `password` in the `scrypt$n$r$p$salt$hash` format."""
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise InputError(f"the password has {len(password or '')} characters; use at least {MIN_PASSWORD_CHARS}")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_hash_format(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        return int(n), int(r), int(p), base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)
    except (ValueError, AttributeError) as err:  # AttributeError: not a string at all
        # Never echo the value: it may be a password pasted by mistake.
        raise DataError(
            "a password hash is not in the `scrypt$n$r$p$salt$hash` format; "
            "make one with `python -m assistant.web.auth hash-password`"
        ) from err


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches the hash; the comparison runs in constant time."""
    n, r, p, salt, digest = check_hash_format(encoded)
    candidate = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=len(digest),
        maxmem=256 * n * r + 2**20,
    )
    return hmac.compare_digest(candidate, digest)


def new_api_key() -> str:
    """A new API key: "cc-" and 256 random bits (URL-safe base64)."""
    return API_KEY_START + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    # A plain SHA-256 is right for a 256-bit random key (nothing to guess); passwords get scrypt.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
