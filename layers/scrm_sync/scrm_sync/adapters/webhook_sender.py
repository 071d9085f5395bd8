"""Outbound webhook POSTs over HTTP(S) with the stdlib.

One attempt per call (the queue does the retries, with backoff). Redirects are not followed: a
3xx comes back as its status, which the use case treats as a failure (a signed body is for the
URL the subscriber configured, not wherever it points). At most a few KiB of any answer are read.
Network errors and timeouts raise ReceiverUnreachable naming the kind of failure only: the URL
may carry a token, so it never appears in an error (the urllib exception is not chained).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from ..services.outbound_webhooks import ReceiverUnreachable

MAX_ANSWER_BYTES = 4096


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


# one opener per process (built once per cold start): no redirects, no cookies
_OPENER = urllib.request.build_opener(_NoRedirects())


class HttpWebhookSender:
    def __init__(self, opener: urllib.request.OpenerDirector | None = None) -> None:
        self._opener = opener or _OPENER

    def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
        if not url.startswith(("https://", "http://")):
            raise ValueError("webhook URLs must be http(s)")
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read(MAX_ANSWER_BYTES)
                return int(response.status)
        except urllib.error.HTTPError as exc:  # 3xx (not followed), 4xx, 5xx
            with exc:
                _drain(exc)
            return int(exc.code)
        except urllib.error.URLError as exc:
            raise ReceiverUnreachable(_kind(exc.reason)) from None
        except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
            raise ReceiverUnreachable(_kind(exc)) from None


def _drain(response: urllib.error.HTTPError) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException):
        response.read(MAX_ANSWER_BYTES)


def _kind(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "name not resolved"
    return type(reason).__name__ if isinstance(reason, BaseException) else "unreachable"
