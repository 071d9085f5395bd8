"""Message crypto shared by WeCom (企业微信) callbacks and WeChat Official Account safe mode.

The scheme (docs/reference channels.md §1.2, §1.3; checked against the official vectors in the tests):

* signature: lowercase hex sha1 of the lexicographically sorted ``[token, timestamp, nonce, encrypt]``
  joined with no separator (Official Account plain mode signs ``[token, timestamp, nonce]`` only);
* key: ``base64decode(EncodingAESKey + "=")`` (32 bytes), AES-256-CBC with ``IV = key[:16]``;
* plaintext: ``16 random bytes ‖ 4-byte big-endian msg length ‖ msg ‖ receiveid`` (CorpID / AppID),
  PKCS#7-padded to a **32**-byte block (pad value 1..32, validated here: the samples do not).

Errors map onto the webhook flow: a wrong signature, a receiveid that is not ours or unusable channel
credentials raise `SignatureInvalid` (401, quarantined); undecodable base64, a bad block length, bad
padding or an impossible length field raise `MalformedPush` (400, quarantined). Signatures are always
checked before anything is decrypted, and compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import ParseError

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pydantic import ValidationError

from ..domain.events import CanonicalEvent
from .base import MalformedPush, SignatureInvalid
from .payloads import bounded_id

BLOCK_SIZE = 32  # the PKCS#7 block size of the WeChat scheme (not the AES block size)
_AES_BLOCK = 16
_PREFIX = 16
_LENGTH = struct.Struct(">I")


def sha1_signature(*parts: str) -> str:
    """Lowercase hex sha1 of the sorted parts joined with no separator (the platform's scheme)."""
    joined = "".join(sorted(parts)).encode("utf-8", "surrogatepass")
    return hashlib.sha1(joined).hexdigest()  # noqa: S324


def check_signature(presented: str | None, *parts: str) -> None:
    """Raise `SignatureInvalid` unless `presented` is the signature of `parts` (constant time)."""
    if not presented:
        raise SignatureInvalid("signature missing")
    expected = sha1_signature(*parts).encode("ascii")
    if not hmac.compare_digest(expected, presented.strip().lower().encode("utf-8", "surrogatepass")):
        raise SignatureInvalid("signature mismatch")


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (a bad key is a channel misconfiguration)."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise SignatureInvalid("channel misconfigured: EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise SignatureInvalid("channel misconfigured: EncodingAESKey must decode to 32 bytes")
    return key


def pkcs7_pad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    pad = block_size - len(data) % block_size
    return data + bytes([pad]) * pad


def pkcs7_unpad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    if not data:
        raise MalformedPush("ciphertext decrypts to nothing")
    pad = data[-1]
    if not 1 <= pad <= block_size or pad > len(data) or data[-pad:] != bytes([pad]) * pad:
        raise MalformedPush("bad padding")
    return data[:-pad]


@dataclass(frozen=True, slots=True)
class WeChatCrypto:
    """Crypto for one channel: its Token, EncodingAESKey and receiveid (CorpID or AppID)."""

    token: str
    encoding_aes_key: str
    receive_id: str

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return sha1_signature(self.token, timestamp, nonce, encrypt)

    def check(self, presented: str | None, timestamp: str, nonce: str, encrypt: str) -> None:
        check_signature(presented, self.token, timestamp, nonce, encrypt)

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside a base64 ciphertext (signature must have been checked already)."""
        key = aes_key(self.encoding_aes_key)
        try:
            ciphertext = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedPush("ciphertext is not base64") from exc
        if not ciphertext or len(ciphertext) % _AES_BLOCK:
            raise MalformedPush("ciphertext length is not a multiple of the AES block")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:_AES_BLOCK])).decryptor()
        plain = pkcs7_unpad(decryptor.update(ciphertext) + decryptor.finalize())
        if len(plain) < _PREFIX + _LENGTH.size:
            raise MalformedPush("plaintext too short")
        (length,) = _LENGTH.unpack_from(plain, _PREFIX)
        start = _PREFIX + _LENGTH.size
        if start + length > len(plain):
            raise MalformedPush("message length exceeds the plaintext")
        receive_id = plain[start + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode("utf-8")):
            raise SignatureInvalid("receiveid does not match this channel")
        return plain[start : start + length]

    def encrypt(self, message: bytes | str, random_prefix: bytes | None = None) -> str:
        """Base64 ciphertext of `message` (for replies and tests; `random_prefix` makes it deterministic)."""
        prefix = os.urandom(_PREFIX) if random_prefix is None else random_prefix
        if len(prefix) != _PREFIX:
            raise ValueError("random_prefix must be 16 bytes")
        body = message.encode("utf-8") if isinstance(message, str) else message
        plain = pkcs7_pad(prefix + _LENGTH.pack(len(body)) + body + self.receive_id.encode("utf-8"))
        key = aes_key(self.encoding_aes_key)
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:_AES_BLOCK])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def encrypt_reply(
        self, message: bytes | str, timestamp: str, nonce: str, random_prefix: bytes | None = None
    ) -> tuple[str, str]:
        """(Encrypt, MsgSignature) for a passive reply or a test push."""
        encrypt = self.encrypt(message, random_prefix)
        return encrypt, self.signature(timestamp, nonce, encrypt)


# ---------------------------------------------------------------- helpers shared by both adapters

MAX_BODY_BYTES = 1024 * 1024


def xml_fields(body: bytes | str) -> dict[str, str]:
    """The direct children of an ``<xml>`` document as ``{tag: text}`` (defusedxml: no entities, no DTD).

    Nested elements (MemChangeList, ScanCodeInfo, ...) keep only their own text; callers that need
    them read the raw body, which is landed untouched."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedPush("body too large")
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not body.strip():
        raise MalformedPush("empty body")
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, TypeError, UnicodeError) as exc:
        raise MalformedPush(f"body is not XML: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise MalformedPush("root element is not <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str) and child.tag not in fields:
            fields[child.tag] = child.text or ""
    return fields


def credential(credentials: Mapping[str, Any], name: str) -> str:
    """A required string credential; a missing one means nothing can be authenticated (401)."""
    value = credentials.get(name)
    if not isinstance(value, str) or not value:
        raise SignatureInvalid(f"channel misconfigured: {name} missing")
    return value


def check_freshness(credentials: Mapping[str, Any], timestamp: str | None, now: datetime) -> None:
    """Replay window: reject a timestamp further than ``replay_window_seconds`` (default 300) from
    `now`; a window of 0 turns the check off (used for the published test vectors)."""
    raw_window = credentials.get("replay_window_seconds", 300)
    try:
        window = int(raw_window if raw_window is not None else 300)
    except (TypeError, ValueError) as exc:
        raise SignatureInvalid("channel misconfigured: replay_window_seconds") from exc
    if window <= 0:
        return
    seconds = unix_seconds(timestamp)
    if seconds is None:
        raise SignatureInvalid("timestamp missing or not a number")
    if abs(now.timestamp() - seconds) > window:
        raise SignatureInvalid("timestamp outside the replay window")


def unix_seconds(text: str | None) -> int | None:
    """A unix timestamp in seconds (at most 12 ASCII digits), or None."""
    value = (text or "").strip()
    if not value or len(value) > 12 or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def utc_from_unix(text: str | None) -> datetime:
    """``CreateTime`` as an aware UTC datetime; a push without a usable one is malformed."""
    seconds = unix_seconds(text)
    if seconds is None:
        raise MalformedPush("CreateTime missing or not a unix timestamp")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedPush("CreateTime out of range") from exc


def event_id(*parts: str) -> str:
    """The dedupe key: the parts joined by ':' (hashed when too long for an event id). The parts
    come from `xml_fields`, whose parser refuses lone surrogates, so hashing the UTF-8 text
    (as `bounded_id` does) gives the keys this channel has always stored."""
    return bounded_id(":".join(p.strip() for p in parts), hashed_prefix="sha256:")


def short_text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:256] if value else None


def build_event(payload: dict[str, Any]) -> CanonicalEvent:
    try:
        return CanonicalEvent.model_validate(payload)
    except ValidationError as exc:
        raise MalformedPush(f"push does not map to a valid event ({exc.error_count()} errors)") from exc
