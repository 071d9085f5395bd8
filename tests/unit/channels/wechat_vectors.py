"""Published WeCom / WeChat test vectors (docs/reference channels.md §1.4, §2) and request builders.

Every key here is either a published test vector or a dev-only dummy key."""

from __future__ import annotations

from datetime import UTC, datetime

from scrm_sync.channels.base import WebhookRequest

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

# Vector A: official WXBizMsgCrypt sample (WeCom doc path/90968)
A = {
    "credentials": {
        "corp_id": "wx5823bf96d3bd56c7",
        "token": "QDG6eK",
        "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "secret": "unused",
        "replay_window_seconds": 0,
    },
    "get": {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    },
    "echo": "1616140317555161061",
    "post": {
        "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
        "timestamp": "1409659813",
        "nonce": "1372623149",
    },
    "encrypt": (
        "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
        "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJ"
        "YuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUc"
        "allcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA"
        "5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
    ),
    "agent_id": "218",
}

# Vector B: current official Python sample (sbzhu/weworkapi_python@callback/Sample.py)
B = {
    "credentials": {
        "corp_id": "ww1436e0e65a779aee",
        "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
        "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
        "replay_window_seconds": 0,
    },
    "get": {
        "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
        "timestamp": "1476416373",
        "nonce": "47744683",
        "echostr": "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    },
    "echo": "1288432023552776189",
    "post": {
        "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
        "timestamp": "1476422779",
        "nonce": "1597212914",
    },
    "encrypt": (
        "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew"
        "+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24Y"
        "hmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJO"
        "pcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
    ),
    "agent_id": "1000002",
    "plaintext": (
        "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
        "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
        "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
    ),
}

# Vector C: wechatpy tests/test_crypto.py (work crypto)
C = {
    "credentials": {
        "corp_id": "wx49f0ab532d5d035a",
        "token": "123456",
        "encoding_aes_key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
        "replay_window_seconds": 0,
    },
    "get": {
        "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
        "timestamp": "1411443780",
        "nonce": "437374425",
        "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
    },
    "echo": "5927782489442352469",
    "post": {
        "msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
        "timestamp": "1411525903",
        "nonce": "461056294",
    },
    "encrypt": (
        "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGym"
        "zxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4h"
        "IiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWY"
        "EvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
    ),
    "agent_id": "1",
    # deterministic encrypt vector: random prefix forced to b"1234567890123456"
    "reply": (
        "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
        "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
    ),
    "reply_encrypt": (
        "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtOb"
        "vesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8"
        "NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O"
        "5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
    ),
    "reply_signature": "407518b7649e86ef23978113f92d27afa9296533",
}

# Vector D: Official Account safe mode (fotock/WXbizMsgCrypt-Node README, from the official MP sample)
D = {
    "credentials": {
        "app_id": "wx2c2769f8efd9abc2",
        "token": "spamtest",
        "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "replay_window_seconds": 0,
    },
    "post": {
        "timestamp": "1409735669",
        "nonce": "1320562132",
        "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
        "encrypt_type": "aes",
    },
    "encrypt": (
        "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9"
        "FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3y"
        "t+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v"
        "6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
    ),
}

# Official Account plain signature vector (wechatpy tests/test_utils.py)
PLAIN = {
    "token": "test",
    "timestamp": "1410685589",
    "nonce": "test",
    "signature": "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff",
    "bad_signature": "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe",
}

# Dev-only dummy channels (keys generated for these tests, never used anywhere else)
DEV_WECOM = {
    "corp_id": "ww0000000000dev001",
    "token": "dev-token-wecom",
    "encoding_aes_key": "ZGV2LW9ubHktd2Vjb20ta2V5LTMyLWJ5dGVzLTAwMDA",
    "secret": "dev-secret",
}
DEV_MP = {
    "app_id": "wx0000000000dev002",
    "token": "dev-token-mp",
    "encoding_aes_key": "ZGV2LW9ubHktbXAtYWVzLWtleS0zMi1ieXRlcy0wMDA",
}


def envelope(encrypt: str, to_user: str = "", agent_id: str = "") -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>"
    ).encode()


def request(
    method: str, query: dict[str, str], body: bytes = b"", channel: str = "wecom", at: datetime = NOW
) -> WebhookRequest:
    return WebhookRequest(channel, method, {"content-type": "text/xml"}, query, body, at, "req-1")
