"""One record per authentic webhook push, written once and read by both of its consumers.

WebhookFunction writes each push as ONE Kinesis record (its only AWS call on the hot path): the
raw landing document (the request as received, secret headers stripped) plus the canonical
events it mapped to and the enrichment requests it produced. The Firehose delivery stream reads
the same records and writes them, GZIP'd and newline-delimited, to the landing bucket under
`raw/webhooks/dt=YYYY-MM-DD/` (one line per push, each line naming its channel); WebhookSyncFunction
reads them and syncs the events. `scrm replay` reads those batched objects and the older
one-object-per-push layout (`raw/webhooks/{channel}/dt=YYYY-MM-DD/...json`) alike: every landing
object is a sequence of landing documents, one per line, optionally GZIP'd.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..channels.base import WebhookRequest
from ..domain.events import CanonicalEvent

LANDING_PREFIX = "raw"
BATCHED_LANDING = f"{LANDING_PREFIX}/webhooks/dt="  # what the delivery stream writes, per day
# Kinesis takes 1 MiB per record, Firehose 1,000 KiB: the record must fit the smaller of the two
MAX_PUSH_RECORD_BYTES = 1000 * 1024
RECORD_VERSION = 1

# Headers that may carry secrets or tokens are never written to the landing bucket.
SECRET_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})
_GZIP_MAGIC = b"\x1f\x8b"


def landing_fields(request: WebhookRequest, note: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "channel": request.channel,
        "method": request.method,
        "received_at": request.received_at.isoformat(),
        "request_id": request.request_id,
        "headers": {k: v for k, v in request.headers.items() if k not in SECRET_HEADERS},
        "query": dict(request.query),
        "body": request.body.decode("utf-8", errors="surrogateescape"),
    }
    if note:
        document["note"] = note
    return document


def _encode(document: Mapping[str, Any] | list[Any]) -> bytes:
    """UTF-8 JSON. A body that was not UTF-8 holds surrogate escapes of its bytes: those are
    written as JSON escapes (\\udcff), so the document stays valid UTF-8 JSON for every reader
    and `scrm replay` still gets the exact bytes back (it encodes with surrogateescape)."""
    try:
        return json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, ensure_ascii=True).encode("ascii")


def landing_document(request: WebhookRequest, note: str | None = None) -> bytes:
    """The request as one JSON document (quarantine objects, and the landing line of a push)."""
    return _encode(landing_fields(request, note))


def push_record(
    request: WebhookRequest,
    messages: Sequence[str],
    enrichments: Sequence[Mapping[str, Any]] = (),
    landed_at: str | None = None,
) -> bytes:
    """The stream record of a push: its landing document with `events` (canonical event messages,
    spliced in as they are, so nothing is serialized twice) and `enrichments`, newline-terminated
    so the delivery stream's concatenation is newline-delimited JSON. With `landed_at`, the raw
    request was landed on its own under that key (a push too large for one record) and the record
    carries no body."""
    fields = landing_fields(request)
    fields["v"] = RECORD_VERSION
    if landed_at is not None:
        del fields["body"], fields["headers"], fields["query"]
        fields["landed_at"] = landed_at
    head = _encode(fields)[:-1]  # without its closing brace
    events = b",".join(m.encode("utf-8") for m in messages)  # pydantic wrote them: valid UTF-8
    tail = b'],"enrichments":' + _encode(list(enrichments)) + b"}\n"
    return head + b',"events":[' + events + tail


class PushEvents(BaseModel):
    """What the sync reads from a push record: its events (validated from the JSON exactly as a
    queue message is) and enrichment requests; the landing fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    channel: str
    request_id: str = ""
    events: list[CanonicalEvent] = Field(default_factory=list)
    enrichments: list[dict[str, Any]] = Field(default_factory=list)


def read_push_events(data: bytes) -> PushEvents:
    """Raises pydantic.ValidationError (a ValueError) when the record is not a push record."""
    return PushEvents.model_validate_json(data)


def landing_lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line) of a landing object: GZIP'd or not, one JSON document per line
    (an old one-object-per-push object is a single line). Empty lines are skipped."""
    if body[:2] == _GZIP_MAGIC:
        body = gzip.decompress(body)
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def batched_landing_prefix(day: date, prefix: str = LANDING_PREFIX) -> str:
    return f"{prefix}/webhooks/dt={day:%Y-%m-%d}/"


def channel_landing_prefix(channel: str, day: date, prefix: str = LANDING_PREFIX) -> str:
    """The one-object-per-push layout of landing buckets written before the delivery stream."""
    return f"{prefix}/webhooks/{channel}/dt={day:%Y-%m-%d}/"
