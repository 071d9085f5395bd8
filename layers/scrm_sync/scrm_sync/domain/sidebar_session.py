"""The sidebar's agent session: a short-lived signed token (JWT, HS256) naming the WeCom member
(userid) the OAuth code belonged to. Issued by GET /sidebar/session; every other sidebar route
accepts only it. The key is the sidebar app's `session_key` in the channels secret, so rotating
that key ends every session at once. The clock is the caller's."""

from __future__ import annotations

import jwt

AUDIENCE = "scrm-sidebar"
ALGORITHM = "HS256"
MIN_KEY_LENGTH = 32  # HS256 wants a key at least as long as its hash


class InvalidSession(ValueError):
    """The token is missing, forged, expired or for another corp: sign in again."""


def issue_session(userid: str, corp_id: str, key: str, now: int, lifetime_seconds: int) -> str:
    claims = {"sub": userid, "iss": corp_id, "aud": AUDIENCE, "iat": now, "exp": now + lifetime_seconds}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def session_member(token: str | None, corp_id: str, key: str, now: int) -> str:
    """The userid a valid token names."""
    if not token:
        raise InvalidSession("no session token: sign in through /sidebar/session")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],  # never the token's own choice ("none", RS/HS confusion)
            audience=AUDIENCE,
            issuer=corp_id,
            # expiry is checked below against the caller's clock
            options={
                "require": ["sub", "iss", "aud", "iat", "exp"],
                "verify_iat": False,
                "verify_exp": False,
            },
        )
        expires = claims["exp"]
        if not isinstance(expires, int) or isinstance(expires, bool) or expires <= now:
            raise jwt.ExpiredSignatureError("expired")
    except jwt.ExpiredSignatureError as exc:
        raise InvalidSession("the session has expired: sign in again") from exc
    except jwt.PyJWTError as exc:
        raise InvalidSession("the session token is not valid: sign in again") from exc
    member = claims.get("sub")
    if not isinstance(member, str) or not member:
        raise InvalidSession("the session token names no member")
    return member
