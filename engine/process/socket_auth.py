"""The socket transport's login: each side proves it holds the session token without ever sending it.

Standard library only (the Blender extension's client imports it). The engine opens with a ``challenge`` carrying
its nonce; the client answers ``auth`` with a nonce of its own and an HMAC-SHA256 proof over both; the engine
checks it and answers ``welcome`` with its own proof over both nonces in the other order, which the client checks
before it sends anything else. A program that does not hold the token learns neither the token nor any job.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..errors import BadToken

MIN_TOKEN_CHARS = 22  # 128 bits as URL-safe base64 (secrets.token_urlsafe(16))
_CONTEXT = "dhandles-engine-login-v1"


def check_token(token) -> str:
    """``token`` if it is long enough to be a session token; ``BadToken`` saying what to do otherwise."""
    if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS:
        raise BadToken(f"A session token must be at least {MIN_TOKEN_CHARS} characters (128 bits); make one with "
                       "python -c \"import secrets; print(secrets.token_urlsafe(32))\".")
    return token


def new_nonce() -> str:
    return secrets.token_hex(16)


def proof(token: str, role: str, first_nonce: str, second_nonce: str) -> str:
    """The proof ``role`` ("client" or "engine") gives: HMAC-SHA256 keyed by the token over both nonces."""
    text = f"{_CONTEXT}|{role}|{first_nonce}|{second_nonce}"
    return hmac.new(token.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def is_valid(expected: str, presented) -> bool:
    """Whether ``presented`` is the ``expected`` proof, compared in constant time."""
    return isinstance(presented, str) and hmac.compare_digest(expected.encode("utf-8"),
                                                              presented.encode("utf-8", "replace"))


def valid_nonce(nonce) -> bool:
    return isinstance(nonce, str) and 16 <= len(nonce) <= 128 and nonce.isascii() and nonce.isalnum()
