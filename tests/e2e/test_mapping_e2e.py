"""Dynamic field mapping through `scrm local run`: a rules-file edit changes how the next push
maps (no restart), a renamed platform field leaves a drift record with a suggestion, and
`scrm replay` re-runs landed pushes through the corrected mapping."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.e2e.test_webhooks_e2e import channels_file, profile, raw
from tests.unit.channels import wechat_vectors as vectors
from tests.unit.channels.test_douyin import CREDS as DOUYIN

pytestmark = pytest.mark.e2e
OPEN_ID = "open-fan-42"


def likes_rule(field: str) -> dict:
    return {
        "mappings": {
            "douyin": {
                "new_video_digg": [
                    {"source": f"content.{field}", "target": "interaction_index", "transform": "int"},
                    {"source": f"content.{field}", "target": "metrics.likes", "transform": "int"},
                ]
            }
        }
    }


@pytest.fixture(scope="module")
def rules_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "rules.json"
    path.write_text(json.dumps(likes_rule("digg_count")))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, rules_path: Path) -> Iterator[RunningStack]:
    channels = channels_file(tmp_path_factory.mktemp("channels"), vectors.A["credentials"])
    env = {
        "SCRM_CHANNELS_FILE": str(channels),
        "SCRM_RULES_FILE": str(rules_path),
        "SCRM_PARAMETER_OVERRIDES": "RulesCacheSeconds=0",
    }
    with start_local_stack(env) as running:
        yield running


def push_likes(stack: RunningStack, msg_id: str, content: dict) -> None:
    body = json.dumps(
        {
            "event": "new_video_digg",
            "from_user_id": OPEN_ID,
            "client_key": DOUYIN["client_key"],
            "content": {"item_id": "v-1", "create_time": int(time.time()), **content},
        }
    ).encode()
    signature = hashlib.sha1(DOUYIN["client_secret"].encode() + body).hexdigest()  # noqa: S324
    headers = {"X-Douyin-Signature": signature, "Msg-Id": msg_id, "Content-Type": "application/json"}
    assert raw(stack, "POST", "/webhooks/douyin", body=body, headers=headers)[0] == 200
    stack.wait_drained()


def interaction_index(stack: RunningStack) -> object:
    found = profile(stack, "douyin_openid", OPEN_ID, DOUYIN["client_key"])
    assert found is not None
    return found["attributes"].get("interaction_index")


def wait_for_rules(stack: RunningStack, rules_path: Path, document: dict) -> None:
    rules_path.write_text(json.dumps(document))
    time.sleep(2.5)  # the stack's file watcher polls every second; the rules cache is 0 s here


def test_rule_edits_apply_to_the_next_push_and_drift_is_recorded_then_replayed(stack, rules_path):
    push_likes(stack, "m-1", {"digg_count": 5})
    assert interaction_index(stack) == 5

    # the platform renames digg_count: the mapped field vanishes, a drift record proposes the rename
    push_likes(stack, "m-2", {"like_count": 7})
    assert interaction_index(stack) == 5  # nothing mapped the renamed field yet
    listing = stack.scrm("drift", "--source", "douyin")
    assert listing.returncode == 0, listing.stderr
    (record,) = [r for r in json.loads(listing.stdout) if r["missing_mapped"]]
    assert record["kind"] == "new_video_digg"
    assert record["missing_mapped"] == ["content.digg_count"]
    assert record["suggestions"][0]["use"] == "content.like_count"

    # the operator applies the suggestion and replays today's landed pushes: m-2 maps now
    wait_for_rules(stack, rules_path, likes_rule("like_count"))
    today = datetime.now(UTC).date().isoformat()
    replayed = stack.scrm("replay", "--source", "douyin", "--since", today, "--run-id", "fix-1")
    assert replayed.returncode == 0, replayed.stderr
    report = json.loads(replayed.stdout)
    assert report["pushes"] == 2 and report["events"] == 2 and report["skipped"] == []
    stack.wait_drained()
    assert interaction_index(stack) == 7
    again = stack.scrm("replay", "--source", "douyin", "--since", today, "--run-id", "fix-1")
    assert again.returncode == 0, again.stderr
    stack.wait_drained()

    # and the next push maps with the edited rule, without a restart
    push_likes(stack, "m-3", {"like_count": 9})
    assert interaction_index(stack) == 9
    found = profile(stack, "douyin_openid", OPEN_ID, DOUYIN["client_key"])
    path = f"/profiles/{found['profile_id']}/timeline"
    body = raw(stack, "GET", path, headers={"X-Api-Key": "dev-api-key-not-secret"})[1]
    entries = [e for e in json.loads(body)["entries"] if e["kind"] == "interaction"]
    assert len(entries) == 3  # replays replace their original's timeline entry, never add one


def test_an_authentic_push_that_cannot_be_mapped_is_acked_recorded_and_skipped_by_replay(stack, rules_path):
    wait_for_rules(stack, rules_path, likes_rule("digg_count"))
    template = json.dumps(
        {
            "event": "new_video_digg",
            "from_user_id": OPEN_ID,
            "client_key": DOUYIN["client_key"],
            "content": {"item_id": "v-2", "create_time": int(time.time()), "digg_count": "HUGE"},
        }
    )
    body = template.replace('"HUGE"', "1e400").encode()  # a number no DynamoDB attribute can hold
    signature = hashlib.sha1(DOUYIN["client_secret"].encode() + body).hexdigest()  # noqa: S324
    headers = {"X-Douyin-Signature": signature, "Msg-Id": "m-huge", "Content-Type": "application/json"}
    for _ in range(2):  # the platform's retry gets the same success answer: no 5xx loop
        status, reply = raw(stack, "POST", "/webhooks/douyin", body=body, headers=headers)
        assert status == 200, reply
    stack.wait_drained()

    listing = stack.scrm("mapping-failures", "--source", "douyin")
    assert listing.returncode == 0, listing.stderr
    failures = json.loads(listing.stdout)
    assert failures and all(f["channel"] == "douyin" for f in failures)
    assert any("digg_count" in json.dumps(f["failures"]) for f in failures)

    today = datetime.now(UTC).date().isoformat()
    replayed = stack.scrm("replay", "--source", "douyin", "--since", today, "--run-id", "huge-1")
    assert replayed.returncode == 3, replayed.stderr  # finished, and says something was skipped
    report = json.loads(replayed.stdout)
    assert report["skipped"] and all(s["key"] and s["reason"] for s in report["skipped"])
    stack.wait_drained()
    assert interaction_index(stack) is not None  # the other pushes still replayed and synced
    assert all(depth == 0 for depth in stack.dead_letters().values()), stack.dead_letters()


def test_an_invalid_rules_edit_never_takes_the_service_down(stack, rules_path):
    wait_for_rules(stack, rules_path, likes_rule("digg_count"))
    wait_for_rules(stack, rules_path, {**likes_rule("digg_count"), "max_identifiers_per_type": "lots"})
    push_likes(stack, "m-during-bad-rules", {"digg_count": 11})  # syncs with the last valid rules
    assert interaction_index(stack) == 11
    assert all(depth == 0 for depth in stack.dead_letters().values()), stack.dead_letters()

    wait_for_rules(stack, rules_path, likes_rule("like_count"))  # the next valid document applies
    push_likes(stack, "m-after-fix", {"like_count": 12})
    assert interaction_index(stack) == 12
