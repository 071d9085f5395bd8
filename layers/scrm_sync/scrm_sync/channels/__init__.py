"""Channel adapters: one module per platform, all behind `ChannelAdapter` (channels/base.py).

`ADAPTERS` maps the `{channel}` path segment of `/webhooks/{channel}` to its adapter. A channel
whose credentials are missing from the channels secret is disabled (404), registered or not.
"""

from __future__ import annotations

from .base import ChannelAdapter
from .doudian import DoudianAdapter
from .douyin import DouyinAdapter
from .wechat_mp import WeChatMpAdapter
from .wecom import WeComAdapter
from .youzan import YouzanAdapter

ADAPTERS: dict[str, ChannelAdapter] = {}


def register(adapter: ChannelAdapter) -> ChannelAdapter:
    ADAPTERS[adapter.name] = adapter
    return adapter


for _adapter in (WeComAdapter(), WeChatMpAdapter(), DouyinAdapter(), DoudianAdapter(), YouzanAdapter()):
    register(_adapter)
