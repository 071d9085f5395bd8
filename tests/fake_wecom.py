"""The local WeCom stand-in (scrm_local.fake_wecom, shared with `scrm local run`) on a port of
its own: tests never call the internet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from scrm_local.fake_wecom import CORP_ID, SECRET, FakeWeCom

from tests.json_http import serving_json

__all__ = ["CORP_ID", "SECRET", "FakeWeCom", "running_fake_wecom"]


@contextmanager
def running_fake_wecom() -> Iterator[FakeWeCom]:
    fake = FakeWeCom()
    with serving_json(lambda method, path, query, body: fake.answer(path, query, body)) as base_url:
        fake.base_url = base_url
        yield fake
