"""Batch handlers log per record and per invocation: every line a record writes names that record
(never another one processed at the same time or before it on the same thread), a failed record's
warning says which record it was without its personal values, and keys added during one
invocation are gone in the next. Through the real handlers, on in-memory sync pieces."""

from __future__ import annotations

import ast
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from scrm_sync.adapters.dynamo_codec import to_item
from scrm_sync.adapters.memory import InMemoryChangeLedger, InMemoryProfileRepository
from scrm_sync.domain.rules import load_rules
from scrm_sync.entrypoints.batch import ConcurrentBatchProcessor, RecordBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.cdc import CdcSync
from scrm_sync.services.sync import ProfileSync

from tests.cdc_factories import change, dms_record, kinesis_record, pos_member
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[3]
RULES = load_rules({})
PHONE = "13800138000"


def log_lines(capsys) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    return [line for line in map(json.loads, filter(None, out.splitlines())) if "message" in line]


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "r",
        "body": body,
        "attributes": {},
        "eventSource": "aws:sqs",
    }


def canonical(event_id: str, source: str, phone: str = PHONE) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "source": source,
            "type": "profile.updated",
            "occurred_at": "2026-11-01T09:30:00+08:00",
            "identifiers": [{"type": "phone", "value": phone}],
            "attributes": {"name": "王小明", "level": "gold"},
        }
    )


class OverlappingSync:
    """The sync core, but every event waits until `parties` events are in flight at once: the
    batch only completes if its records really overlap on different threads."""

    def __init__(self, parties: int, fail_event: str | None = None) -> None:
        self.real = ProfileSync(InMemoryProfileRepository(), lambda: RULES)
        self.barrier = threading.Barrier(parties, timeout=10)
        self.fail_event = fail_event
        self.threads: set[int] = set()

    def batch(self, events):
        staged = self.real.batch(events)
        overlapping = self

        class Staged:
            def apply(self, event):
                overlapping.threads.add(threading.get_ident())
                overlapping.barrier.wait()
                if event.event_id == overlapping.fail_event:
                    raise RuntimeError(f"throttled while writing {PHONE}")
                return staged.apply(event)

            def finish(self):
                staged.finish()

        return Staged()


# -- per-record context on concurrent worker threads --------------------------------------------
def test_records_processed_concurrently_each_log_their_own_event(load_handler, capsys):
    sync = OverlappingSync(parties=2)
    handler = load_handler("profile_sync", sync=sync)
    event = {
        "Records": [
            sqs_record("m-1", canonical("pos-1", "pos", "13800000001")),
            sqs_record("m-2", canonical("wecom-2", "wecom", "13800000002")),
        ]
    }
    assert handler.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert len(sync.threads) == 2  # both records were in flight at once, on two threads
    synced = [line for line in log_lines(capsys) if line["message"] == "event synced"]
    # each line's context (from the processor) is the record the line itself is about
    assert all(line["event"].endswith(line["event_id"]) for line in synced)
    assert sorted((line["message_id"], line["event_id"], line["source"]) for line in synced) == [
        ("m-1", "pos-1", "pos"),
        ("m-2", "wecom-2", "wecom"),
    ]


def test_a_reused_worker_thread_starts_each_record_clean(load_handler, capsys):
    """Four records on two workers, in overlapping pairs: m-1 and m-2 take both threads, then
    m-3 and m-4 reuse them, one of them m-1's thread. Keys a record adds stay its own."""
    sync = OverlappingSync(parties=2)
    handler = load_handler("profile_sync", sync=sync)
    handler.processor = ConcurrentBatchProcessor(EventType.SQS, handler.logger, workers=2)
    original = handler.record_handler

    def tagging_handler(record):
        if record.message_id == "m-1":
            handler.logger.thread_safe_append_keys(only_m1="yes")
        original(record)

    handler.record_handler = tagging_handler
    records = [sqs_record(f"m-{i}", canonical(f"pos-{i}", "pos", f"1380000000{i}")) for i in (1, 2, 3, 4)]
    assert handler.lambda_handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    assert len(sync.threads) == 2
    synced = [line for line in log_lines(capsys) if line["message"] == "event synced"]
    assert sorted((line["message_id"], "only_m1" in line) for line in synced) == [
        ("m-1", True),
        ("m-2", False),
        ("m-3", False),
        ("m-4", False),
    ]


# -- failure logs name the record ----------------------------------------------------------------
def test_failed_queue_records_are_logged_by_event_id_and_source_without_personal_values(load_handler, capsys):
    sync = OverlappingSync(parties=1, fail_event="pos-1")
    handler = load_handler("profile_sync", sync=sync)
    event = {
        "Records": [
            sqs_record("m-1", canonical("pos-1", "pos")),  # the sync core fails, quoting the phone
            sqs_record("m-2", "not an event " + PHONE),  # does not parse
            sqs_record("m-3", "[" * 100_000),  # nested beyond any parser's depth
            sqs_record("m-4", canonical("pos-4", "pos", "13800000004")),
        ]
    }
    response = handler.lambda_handler(event, LambdaContext())
    failures = sorted(failure["itemIdentifier"] for failure in response["batchItemFailures"])
    assert failures == ["m-1", "m-2", "m-3"]  # concurrent: in the order they failed
    lines = log_lines(capsys)
    failed = sorted(
        (line for line in lines if line["message"] == "record failed; it will be retried"),
        key=lambda line: line["message_id"],
    )
    assert [
        (line["message_id"], line.get("event_id"), line.get("source"), line["error"]) for line in failed
    ] == [
        ("m-1", "pos-1", "pos", "RuntimeError"),
        ("m-2", None, None, "ValidationError"),
        ("m-3", None, None, "ValidationError"),
    ]
    assert failed[0]["detail"] == "throttled while writing 138****8000"
    text = json.dumps(lines, ensure_ascii=False)
    assert PHONE not in text and "王小明" not in text


def test_a_failed_cdc_record_is_logged_by_position_and_table_and_later_ones_wait(load_handler, capsys):
    class FailingRepository(InMemoryProfileRepository):
        def owners(self, identifier_keys):
            if "member_no#pos#M2" in identifier_keys:
                raise RuntimeError("ProvisionedThroughputExceededException")
            return super().owners(identifier_keys)

    cdc = CdcSync(ProfileSync(FailingRepository(), lambda: RULES), lambda: RULES, InMemoryChangeLedger())
    handler = load_handler("cdc", cdc=cdc)
    event = {
        "Records": [
            dms_record(change("pos.members", "insert", pos_member("M1", phone="13800000001")), "301"),
            kinesis_record(b'{"data": {"phone": "13800000009"', "302"),  # malformed: skipped
            dms_record(change("pos.members", "insert", pos_member("M2", phone="13800000002")), "303"),
            dms_record(change("pos.members", "delete", pos_member("M2", phone="13800000002")), "304"),
        ]
    }
    response = handler.lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "303"}, {"itemIdentifier": "304"}]}
    lines = log_lines(capsys)
    (failed,) = [line for line in lines if line["message"] == "record failed; it will be retried"]
    assert (failed["sequence_number"], failed["shard"], failed["table"], failed["error"]) == (
        "303",
        "shardId-000000000003",
        "pos.members",
        "RuntimeError",
    )
    (malformed,) = [line for line in lines if line["message"] == "malformed CDC record skipped"]
    assert malformed["sequence_number"] == "302"
    assert "table" not in malformed  # record 301's table stayed with record 301
    assert "13800000002" not in json.dumps(lines)


def profile_stream_record(
    sequence: str, profile_id: str, merged_from: list[str], sk: str = "PROFILE"
) -> dict:
    return {
        "eventID": f"ev-{sequence}",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": to_item({"pk": profile_id, "sk": sk}),
            "OldImage": to_item({"pk": profile_id, "sk": sk}),
            "NewImage": to_item({"pk": profile_id, "sk": sk, "merged_from": merged_from}),
            "SequenceNumber": sequence,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


class AuditTrail:
    def __init__(self, failing_position: str | None = None) -> None:
        self.entries: list[tuple[str, str]] = []
        self.failing_position = failing_position

    def record(self, profile_id, change, position):
        if position == self.failing_position:
            raise RuntimeError("ConditionalCheckFailed")
        self.entries.append((profile_id, position))


def test_the_audit_chain_stops_at_a_failed_record_names_it_and_resumes_from_it(load_handler, capsys):
    trail = AuditTrail(failing_position="3/000")
    handler = load_handler("audit_chain", audit=trail)
    records = [
        profile_stream_record("1", "p_a", ["p_x"], sk="EVIDENCE#e1"),  # not a profile change
        profile_stream_record("2", "p_a", ["p_x"]),
        profile_stream_record("3", "p_b", ["p_y"]),
        profile_stream_record("4", "p_a", ["p_x", "p_z"]),  # must not be chained before 3
    ]
    response = handler.lambda_handler({"Records": records}, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "4"}]}
    assert trail.entries == [("p_a", "2/000")]
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (failed,) = [line for line in lines if line.get("message") == "record failed; it will be retried"]
    assert (failed["sequence_number"], failed["profile_id"], failed["error"]) == ("3", "p_b", "RuntimeError")
    (emf,) = [line for line in lines if "_aws" in line]
    assert (emf["AuditAppendFailed"], emf["AuditEntriesAppended"]) == ([1.0], [1.0])

    trail.failing_position = None  # Lambda retries the stream from the failed record
    assert handler.lambda_handler({"Records": records[2:]}, LambdaContext()) == {"batchItemFailures": []}
    assert trail.entries == [("p_a", "2/000"), ("p_b", "3/000"), ("p_a", "4/000")]


# -- per-invocation context ------------------------------------------------------------------------
def test_keys_added_in_one_invocation_are_gone_in_the_next(load_handler, capsys):
    sync = ProfileSync(InMemoryProfileRepository(), lambda: RULES)
    handler = load_handler("profile_sync", sync=sync)
    original = handler.record_handler

    def appending_handler(record):
        handler.logger.append_keys(tenant_hint="from-invocation-1")  # invocation-wide, on purpose
        original(record)

    handler.record_handler = appending_handler
    handler.lambda_handler({"Records": [sqs_record("m-1", canonical("pos-1", "pos"))]}, LambdaContext())
    handler.record_handler = original
    second = LambdaContext(aws_request_id="2f0c1a3e-0000-4000-8000-000000000002")
    handler.lambda_handler({"Records": [sqs_record("m-2", canonical("pos-2", "pos"))]}, second)
    lines = log_lines(capsys)
    first_lines = [line for line in lines if line.get("message_id") == "m-1"]
    second_lines = [line for line in lines if line["function_request_id"] == second.aws_request_id]
    assert first_lines and all(line["tenant_hint"] == "from-invocation-1" for line in first_lines)
    assert second_lines and not any("tenant_hint" in line for line in second_lines)


def inject_lambda_context_calls(path: Path) -> list[ast.expr]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        decorator
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if "inject_lambda_context" in ast.unparse(decorator)
    ]


@pytest.mark.parametrize("app", sorted(ROOT.glob("functions/*/app.py")), ids=lambda path: path.parent.name)
def test_every_handler_starts_each_invocation_with_a_clean_log_context(app):
    decorators = inject_lambda_context_calls(app)
    assert decorators, "every handler needs @logger.inject_lambda_context(clear_state=True)"
    for decorator in decorators:  # a module may hold several handlers (one per function)
        assert isinstance(decorator, ast.Call), "use @logger.inject_lambda_context(clear_state=True)"
        keywords = {keyword.arg: keyword.value for keyword in decorator.keywords}
        assert isinstance(keywords.get("clear_state"), ast.Constant) and keywords["clear_state"].value is True


# -- the processor keeps Powertools' contract --------------------------------------------------------
def test_a_record_handler_that_asks_for_the_lambda_context_gets_it(capsys):
    processor = RecordBatchProcessor(EventType.SQS, pii_safe_logger(service=f"ctx-{uuid.uuid4().hex[:8]}"))
    seen: list[str] = []

    def record_handler(record, lambda_context):
        seen.append(f"{record.message_id}@{lambda_context.aws_request_id}")

    response = process_partial_response(
        event={"Records": [sqs_record("m-1", "{}")]},
        record_handler=record_handler,
        processor=processor,
        context=LambdaContext(),
    )
    assert response == {"batchItemFailures": []}
    assert seen == ["m-1@c6af9ac6-7b61-11e6-9a41-93e812345678"]
