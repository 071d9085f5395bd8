"""`scrm replay` and `scrm mapping-failures` in-process, through `scrm`'s own entry point, with
the running stack's replay built from in-memory ports: the exit status says whether
anything was skipped, and the listing is JSON."""

from __future__ import annotations

import json

import pytest
import scrm_sync.bootstrap
from scrm_local import cli, replay_commands
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryQueue

from tests.unit.services.test_replay_skips import DAY, DEFAULT_RULES, ITEM_RULES, land_pushes, replayer


class AttachedRuntime:
    """Stands in for the runtime `attach()` returns against a running stack."""

    active = False

    def activate(self) -> None:
        self.active = True

    def deactivate(self) -> None:
        self.active = False


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch):
    """The landed pushes, and a function that points `scrm` at them with some rules."""
    landing, queue, runtime = land_pushes(), InMemoryQueue(), AttachedRuntime()
    monkeypatch.setattr(cli, "attach", lambda: runtime)

    def use(rules) -> tuple[InMemoryLanding, InMemoryQueue]:
        service = replayer(landing, rules, queue)
        monkeypatch.setattr(scrm_sync.bootstrap, "replay", lambda: service)
        return landing, queue

    yield use
    assert not runtime.active  # the application's environment is always left again


def test_replay_exits_3_when_objects_were_skipped_and_lists_them(stack, capsys):
    stack(DEFAULT_RULES)
    status = cli.main(["replay", "--source", "douyin", "--since", DAY.isoformat(), "--run-id", "r1"])
    out, err = capsys.readouterr()
    assert status == replay_commands.EXIT_SKIPPED == 3
    report = json.loads(out)
    assert report["events"] == 2 and [s["kind"] for s in report["skipped"]] == ["new_video_digg"]
    assert "1 object(s) skipped" in err


def test_replay_exits_0_when_nothing_was_skipped(stack, capsys):
    _, queue = stack(ITEM_RULES)
    status = cli.main(
        ["replay", "--source", "douyin", "--since", DAY.isoformat(), "--until", DAY.isoformat()]
    )
    assert status == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == [] and len(queue.messages) == 3


def test_replay_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        cli.main(["replay", "--help"])
    assert "3 the run finished but objects were skipped" in " ".join(capsys.readouterr().out.split())


def test_mapping_failures_lists_the_records_as_json(stack, capsys):
    stack(DEFAULT_RULES)
    assert cli.main(["mapping-failures", "--source", "douyin", "--since", DAY.isoformat()]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["channel"] == "douyin" and record["failures"][0]["kind"] == "new_video_digg"
    assert record["landing_prefix"].startswith("raw/webhooks/dt=")
    assert record["replay"].startswith("scrm replay --source douyin --since ")
    assert cli.main(["mapping-failures", "--since", "2099-01-01"]) == 0
    assert json.loads(capsys.readouterr().out) == []
