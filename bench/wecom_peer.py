"""WeCom safe-mode pushes: ours versus wechatpy, in one process, on the same pushes.

The pushes are what WeCom sends in safe mode (``msg_signature`` over the ciphertext, AES-256-CBC,
XML inside XML), encrypted and signed with the dev credentials by the project's own WeChatCrypto.
Two comparisons, each timed interleaved in chunks (ours, peer, then peer, ours...) over several
rounds, CPU time, medians:

* crypto core: our signature check + decrypt + XML parse of both documents versus wechatpy's
  ``WeChatCrypto.decrypt_message`` (parses the outer XML, checks, decrypts) + ``xmltodict`` on the
  message it returns (what ``wechatpy.work.parse_message`` parses with);
* adapter: ``WeComAdapter.verify`` + ``parse`` (the webhook's channel adapter: also maps the
  message to a validated canonical event) versus ``decrypt_message`` + ``wechatpy.work.parse_message``
  (a typed message object).

wechatpy is a benchmark-only dependency (bench/requirements.txt, installed by `make bench`); without
it the rendered lines say why instead of giving a figure.
"""

from __future__ import annotations

import importlib.metadata
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scrm_sync.channels.base import WebhookRequest
from scrm_sync.channels.wechat_crypto import WeChatCrypto, xml_fields
from scrm_sync.channels.wecom import WeComAdapter

from .webhook_harness import CHANNELS

try:  # the peer, when `make bench` installed it
    import xmltodict
    from wechatpy.work import parse_message as peer_parse_message
    from wechatpy.work.crypto import WeChatCrypto as PeerCrypto

    PEER_UNAVAILABLE: str | None = None
except Exception as exc:  # any failure to import it is reported, never hidden behind a figure
    PEER_UNAVAILABLE = f"wechatpy could not be imported ({type(exc).__name__}: {exc})"

GOAL_RATIO = 0.9
CREDENTIALS = CHANNELS["wecom"]
CORP_ID = CREDENTIALS["corp_id"]
OUR_CRYPTO = WeChatCrypto(CREDENTIALS["token"], CREDENTIALS["encoding_aes_key"], CORP_ID)


@dataclass(frozen=True)
class SafeModePush:
    body: bytes
    msg_signature: str
    timestamp: str
    nonce: str
    request: WebhookRequest  # the same push as the webhook hands it to the adapter


def _message(i: int, created: int) -> str:
    """The i-th message of a mix seen in production: 客户联系 changes and member messages."""
    head = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{created}</CreateTime>"
        "<AgentID>1000002</AgentID>"
    )
    external = f"wmAJ2GCAAA{i:08d}yujaWJHDDGi0mAC"
    kind = i % 4
    if kind == 3:  # a member writes to the app
        return (
            f"{head}<FromUserName><![CDATA[member{i % 50}]]></FromUserName>"
            "<MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[客户 {i} 询问双十一订单的发货时间和会员积分]]></Content>"
            f"<MsgId>{7_000_000 + i}</MsgId></xml>"
        )
    change = ("add_external_contact", "edit_external_contact", "del_follow_user")[kind]
    state = "<State><![CDATA[qr_store_42]]></State>" if kind == 0 else ""
    return (
        f"{head}<FromUserName><![CDATA[sys]]></FromUserName><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[zhangsan{i % 20}]]></UserID>"
        f"<ExternalUserID><![CDATA[{external}]]></ExternalUserID>{state}</xml>"
    )


def safe_mode_pushes(count: int) -> list[SafeModePush]:
    """`count` distinct pushes, each with its own ciphertext, timestamp and nonce."""
    now = int(time.time())
    pushes = []
    for i in range(count):
        timestamp, nonce = str(now - i), f"n{i:09d}"
        encrypt, signature = OUR_CRYPTO.encrypt_reply(_message(i, now - i), timestamp, nonce)
        body = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            "<AgentID><![CDATA[1000002]]></AgentID></xml>"
        ).encode()
        query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
        request = WebhookRequest(
            channel="wecom",
            method="POST",
            headers={"content-type": "text/xml"},
            query=query,
            body=body,
            received_at=datetime.now(UTC),
            request_id=f"bench-{i}",
        )
        pushes.append(SafeModePush(body, signature, timestamp, nonce, request))
    return pushes


# ---------------------------------------------------------------- the four contenders


def ours_core(push: SafeModePush) -> dict[str, str]:
    encrypt = xml_fields(push.body).get("Encrypt", "").strip()
    OUR_CRYPTO.check(push.msg_signature, push.timestamp, push.nonce, encrypt)
    return xml_fields(OUR_CRYPTO.decrypt(encrypt))


def ours_adapter(adapter: WeComAdapter) -> Callable[[SafeModePush], Any]:
    def verify_and_parse(push: SafeModePush) -> Any:
        adapter.verify(push.request, CREDENTIALS)
        return adapter.parse(push.request, CREDENTIALS)

    return verify_and_parse


def peer_core(peer: Any) -> Callable[[SafeModePush], dict[str, str]]:
    def decrypt_and_parse(push: SafeModePush) -> dict[str, str]:
        xml = peer.decrypt_message(push.body, push.msg_signature, push.timestamp, push.nonce)
        return dict(xmltodict.parse(xml)["xml"])

    return decrypt_and_parse


def peer_adapter(peer: Any) -> Callable[[SafeModePush], Any]:
    def decrypt_and_parse_message(push: SafeModePush) -> Any:
        xml = peer.decrypt_message(push.body, push.msg_signature, push.timestamp, push.nonce)
        return peer_parse_message(xml)

    return decrypt_and_parse_message


# ---------------------------------------------------------------- timing


def _cpu_seconds(contender: Callable[[SafeModePush], Any], pushes: Sequence[SafeModePush]) -> float:
    start = time.process_time()
    for push in pushes:
        contender(push)
    return time.process_time() - start


def compare(
    ours: Callable[[SafeModePush], Any],
    peer: Callable[[SafeModePush], Any],
    pushes: Sequence[SafeModePush],
    rounds: int,
    chunk: int,
) -> dict[str, float]:
    """Both rates (pushes per CPU second) and the ratio ours/peer, medians over rounds; within a
    round the two alternate chunk by chunk, each going first half of the time."""
    ours_rates, peer_rates, ratios = [], [], []
    for round_no in range(rounds):
        ours_s = peer_s = 0.0
        for chunk_no, start in enumerate(range(0, len(pushes), chunk)):
            part = pushes[start : start + chunk]
            if (round_no + chunk_no) % 2:
                peer_s += _cpu_seconds(peer, part)
                ours_s += _cpu_seconds(ours, part)
            else:
                ours_s += _cpu_seconds(ours, part)
                peer_s += _cpu_seconds(peer, part)
        ours_rates.append(len(pushes) / ours_s)
        peer_rates.append(len(pushes) / peer_s)
        ratios.append(peer_s / ours_s)
    return {
        "ours_per_s": statistics.median(ours_rates),
        "peer_per_s": statistics.median(peer_rates),
        "ratio": statistics.median(ratios),
    }


def _disagreement(peer: Any, pushes: Sequence[SafeModePush]) -> str | None:
    """Why the peer cannot be compared on these pushes (it fails, or reads one differently from
    ours: then a rate would compare different work), or None."""
    decrypt_and_parse = peer_core(peer)
    for push in pushes:
        try:
            theirs = decrypt_and_parse(push)
        except Exception as exc:
            return f"wechatpy fails on push {push.request.request_id}: {type(exc).__name__}: {exc}"
        if theirs != ours_core(push):
            return f"wechatpy reads push {push.request.request_id} differently from ours"
    return None


def run(count: int = 400, rounds: int = 11, chunk: int = 20) -> dict[str, Any]:
    if PEER_UNAVAILABLE is not None:
        return {"unavailable": PEER_UNAVAILABLE}
    peer = PeerCrypto(CREDENTIALS["token"], CREDENTIALS["encoding_aes_key"], CORP_ID)
    pushes = safe_mode_pushes(count)
    disagreement = _disagreement(peer, pushes)
    if disagreement is not None:
        return {"unavailable": disagreement}
    adapter = WeComAdapter()
    contenders = {
        "core": (ours_core, peer_core(peer)),
        "adapter": (ours_adapter(adapter), peer_adapter(peer)),
    }
    for ours, theirs in contenders.values():  # warm both: imports, caches, first-call costs
        for push in pushes[:chunk]:
            ours(push)
            theirs(push)
    return {
        "wechatpy": importlib.metadata.version("wechatpy"),
        "pushes": count,
        "rounds": rounds,
        "chunk": chunk,
        **{name: compare(ours, theirs, pushes, rounds, chunk) for name, (ours, theirs) in contenders.items()},
    }


def render(results: dict[str, Any]) -> list[str]:
    if "unavailable" in results:
        return [
            f"WeCom crypto versus wechatpy: **not measured**: {results['unavailable']} "
            "(`make bench` installs wechatpy from bench/requirements.txt).",
        ]
    lines = [
        f"WeCom safe-mode pushes, ours versus wechatpy {results['wechatpy']} (same process, the same "
        f"{results['pushes']} pushes, interleaved in chunks of {results['chunk']}, medians of "
        f"{results['rounds']} rounds; pushes per CPU second; goal ours/peer ≥ {GOAL_RATIO}x):",
        "",
        "| comparison | ours pushes/s | wechatpy pushes/s | ours/peer |",
        "|---|---|---|---|",
    ]
    labels = {
        "core": "crypto core: signature + AES decrypt + XML parse vs `decrypt_message` + xmltodict",
        "adapter": "adapter: `WeComAdapter` verify + parse (to a canonical event) vs "
        "`decrypt_message` + `work.parse_message`",
    }
    for name, label in labels.items():
        r = results[name]
        verdict = "" if r["ratio"] >= GOAL_RATIO else " ✗"
        lines.append(
            f"| {label} | {r['ours_per_s']:,.0f} | {r['peer_per_s']:,.0f} | {r['ratio']:.2f}x{verdict} |"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(render(run())))
