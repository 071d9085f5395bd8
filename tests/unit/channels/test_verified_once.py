"""A WeCom push is authenticated and decrypted once: parse() reuses what verify() decrypted for
that very request, and never for another one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from scrm_sync.channels.base import SignatureInvalid
from scrm_sync.channels.wechat_crypto import WeChatCrypto
from scrm_sync.channels.wecom import WeComAdapter

from tests.unit.channels import wechat_vectors as vectors


def vector_a_push() -> Any:
    return vectors.request("POST", vectors.A["post"], vectors.envelope(vectors.A["encrypt"], "", "218"))


def test_verify_then_parse_decrypts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    decrypt = WeChatCrypto.decrypt

    def counting(self: WeChatCrypto, text: str) -> bytes:
        calls.append(text)
        return decrypt(self, text)

    monkeypatch.setattr(WeChatCrypto, "decrypt", counting)
    adapter, push = WeComAdapter(), vector_a_push()
    adapter.verify(push, vectors.A["credentials"])
    parsed = adapter.parse(push, vectors.A["credentials"])
    assert len(calls) == 1 and parsed.events
    adapter.parse(push, vectors.A["credentials"])  # kept for one parse only: a second one checks again
    assert len(calls) == 2


def test_what_one_request_verified_is_never_used_for_another() -> None:
    adapter, push = WeComAdapter(), vector_a_push()
    adapter.verify(push, vectors.A["credentials"])
    forged = replace(push, query={**push.query, "msg_signature": "0" * 40})
    with pytest.raises(SignatureInvalid):
        adapter.parse(forged, vectors.A["credentials"])
