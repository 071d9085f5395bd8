"""The shared WeChat / WeCom message crypto against the published vectors, and its failure modes."""

import base64
import struct
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from scrm_sync.channels.base import MalformedPush, SignatureInvalid
from scrm_sync.channels.wechat_crypto import (
    WeChatCrypto,
    aes_key,
    check_freshness,
    check_signature,
    pkcs7_unpad,
    sha1_signature,
    xml_fields,
)

from .wechat_vectors import DEV_WECOM, NOW, PLAIN, A, B, C


def crypto_of(vector) -> WeChatCrypto:
    creds = vector["credentials"]
    return WeChatCrypto(creds["token"], creds["encoding_aes_key"], creds.get("corp_id") or creds["app_id"])


def raw_encrypt(key_text: str, plaintext: bytes) -> str:
    """AES-CBC of already padded bytes, to build hostile ciphertexts."""
    key = aes_key(key_text)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


@pytest.mark.parametrize("vector", [A, B, C], ids=["A", "B", "C"])
def test_msg_signatures_of_the_published_vectors(vector):
    crypto = crypto_of(vector)
    get, post = vector["get"], vector["post"]
    assert crypto.signature(get["timestamp"], get["nonce"], get["echostr"]) == get["msg_signature"]
    assert crypto.signature(post["timestamp"], post["nonce"], vector["encrypt"]) == post["msg_signature"]


def test_plain_signature_vector():
    assert sha1_signature(PLAIN["token"], PLAIN["timestamp"], PLAIN["nonce"]) == PLAIN["signature"]
    check_signature(PLAIN["signature"], PLAIN["token"], PLAIN["timestamp"], PLAIN["nonce"])
    with pytest.raises(SignatureInvalid):
        check_signature(PLAIN["bad_signature"], PLAIN["token"], PLAIN["timestamp"], PLAIN["nonce"])


@pytest.mark.parametrize("presented", [None, "", "x", "é" * 40, "\ud800"])
def test_missing_or_odd_signatures_are_rejected(presented):
    with pytest.raises(SignatureInvalid):
        check_signature(presented, "t", "1", "2")


def test_vector_a_decrypts_with_a_30_byte_pad_and_the_documented_length():
    crypto = crypto_of(A)
    key = aes_key(A["credentials"]["encoding_aes_key"])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(A["encrypt"])) + decryptor.finalize()
    assert plain[-1] == 30  # a 16-byte PKCS#7 unpadder would reject this
    message = crypto.decrypt(A["encrypt"])
    assert len(message) == 284 and b"<Content><![CDATA[hello]]></Content>" in message


def test_vector_b_decrypts_to_the_documented_xml():
    assert crypto_of(B).decrypt(B["encrypt"]).decode("utf-8") == B["plaintext"]


def test_deterministic_encrypt_vector_c():
    encrypt, signature = crypto_of(C).encrypt_reply(
        C["reply"], C["post"]["timestamp"], C["post"]["nonce"], random_prefix=b"1234567890123456"
    )
    assert (encrypt, signature) == (C["reply_encrypt"], C["reply_signature"])
    assert crypto_of(C).decrypt(encrypt).decode() == C["reply"]


@pytest.mark.parametrize("message", [b"", b"x", b"a" * 11, b"a" * 12, "你好".encode() * 100])
def test_round_trip_every_padding_length(message):
    crypto = WeChatCrypto(DEV_WECOM["token"], DEV_WECOM["encoding_aes_key"], DEV_WECOM["corp_id"])
    assert crypto.decrypt(crypto.encrypt(message)) == message


def test_receiveid_of_another_corp_is_a_signature_failure():
    mine = WeChatCrypto(DEV_WECOM["token"], DEV_WECOM["encoding_aes_key"], DEV_WECOM["corp_id"])
    theirs = WeChatCrypto(DEV_WECOM["token"], DEV_WECOM["encoding_aes_key"], "ww_someone_else")
    with pytest.raises(SignatureInvalid, match="receiveid"):
        mine.decrypt(theirs.encrypt(b"<xml/>"))


def _body(length_field: int, message: bytes = b"abc") -> bytes:
    return b"R" * 16 + struct.pack(">I", length_field) + message + DEV_WECOM["corp_id"].encode()  # 41 bytes


@pytest.mark.parametrize(
    "plaintext",
    [
        _body(3) + bytes([0]) * 23,  # pad byte 0
        _body(3) + bytes([33]) * 23,  # pad byte > 32
        _body(3) + bytes([1]) * 19 + bytes([1, 5, 5, 5]),  # pad bytes disagree
        _body(10_000) + bytes([23]) * 23,  # length field beyond the data
        b"R" * 16 + bytes([16]) * 16,  # nothing after the random prefix
    ],
    ids=["pad0", "pad33", "inconsistent-pad", "length-overflow", "too-short"],
)
def test_hostile_plaintexts_are_malformed(plaintext):
    crypto = WeChatCrypto(DEV_WECOM["token"], DEV_WECOM["encoding_aes_key"], DEV_WECOM["corp_id"])
    assert len(plaintext) % 16 == 0
    with pytest.raises(MalformedPush):
        crypto.decrypt(raw_encrypt(DEV_WECOM["encoding_aes_key"], plaintext))


@pytest.mark.parametrize("ciphertext", ["", "not base64!", "QUJD", base64.b64encode(b"x" * 17).decode()])
def test_undecodable_ciphertexts_are_malformed(ciphertext):
    with pytest.raises(MalformedPush):
        crypto_of(A).decrypt(ciphertext)


def test_pkcs7_unpad_checks_the_range():
    assert pkcs7_unpad(b"abc" + bytes([29]) * 29) == b"abc"
    for bad in (b"", b"abc\x00", b"ab" + bytes([40]) * 40, b"\x05\x05"):
        with pytest.raises(MalformedPush):
            pkcs7_unpad(bad)


@pytest.mark.parametrize("key", ["short", "!" * 43, "ZGV2" * 11])
def test_a_misconfigured_key_cannot_authenticate(key):
    with pytest.raises(SignatureInvalid, match="misconfigured"):
        aes_key(key)


def test_replay_window():
    now_ts = str(int(NOW.timestamp()))
    check_freshness({}, now_ts, NOW + timedelta(seconds=299))
    check_freshness({"replay_window_seconds": 0}, "1409659813", NOW)
    check_freshness({"replay_window_seconds": 0}, None, NOW)
    for creds, ts in [
        ({}, str(int(NOW.timestamp()) - 301)),
        ({}, str(int(NOW.timestamp()) + 301)),
        ({"replay_window_seconds": 10}, str(int(NOW.timestamp()) - 11)),
        ({}, None),
        ({}, "abc"),
        ({}, "9" * 400),
        ({}, "١٢٣"),  # non-ASCII digits
    ]:
        with pytest.raises(SignatureInvalid):
            check_freshness(creds, ts, NOW)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"garbage",
        b"<xml><a>",
        b"<notxml><a>1</a></notxml>",
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<xml><A>&b;</A></xml>",
        b'<!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd"><xml/>',
        b"\xff\xfe<\x00x\x00",
    ],
)
def test_xml_fields_rejects_garbage_entities_and_dtds(body):
    with pytest.raises(MalformedPush):
        xml_fields(body)


def test_xml_fields_reads_cdata_and_plain_children():
    fields = xml_fields(b"<xml><A><![CDATA[x<y]]></A><B>2</B><C><D>nested</D></C><E/></xml>")
    assert fields == {"A": "x<y", "B": "2", "C": "", "E": ""}
