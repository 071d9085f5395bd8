"""The local stack validates its config files with the functions' own parser: it refuses to
start with an invalid rules or channels file (naming the file and the field), and while it
runs, a bad edit of either file is logged and never put; the next valid edit applies."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scrm_local.stack import LocalStack, StackError

from tests.fixtures.local_stack.support import PROJECT, TEMPLATE, free_port, settings, wait_for

CHANNELS = {"api": {"keys": {"test": "fixture-key"}}}
RULES = {"max_identifiers_per_type": {"default": 5}}


def write_config(folder: Path, channels: object = CHANNELS, rules: object = RULES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in (("channels.json", channels), ("rules.json", rules)):
        (folder / name).write_text(document if isinstance(document, str) else json.dumps(document))
    return folder


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    """A stack of its own: these tests edit its files, which the shared stack's tests read."""
    folder = write_config(tmp_path_factory.mktemp("watched-config"))
    running = LocalStack(settings(folder)).start()
    try:
        yield running, folder
    finally:
        running.stop()


def stored_rules(stack: LocalStack) -> object:
    assert stack.clients is not None
    name = f"{stack.settings.stack_name}-RulesParameter"
    return json.loads(stack.clients("ssm").get_parameter(Name=name)["Parameter"]["Value"])


def stored_channels(stack: LocalStack) -> object:
    assert stack.clients is not None
    name = f"{stack.settings.stack_name}-ChannelCredentialsSecret"
    return json.loads(stack.clients("secretsmanager").get_secret_value(SecretId=name)["SecretString"])


@pytest.mark.parametrize(
    ("file", "stored", "bad", "problem"),
    [
        ("rules.json", stored_rules, {"max_identifiers_per_type": "lots"}, "max_identifiers_per_type: "),
        ("rules.json", stored_rules, "{not json", "(document): not valid JSON"),
        ("channels.json", stored_channels, {"api": {"keys": ["fixture-key"]}}, "api.keys: "),
        ("channels.json", stored_channels, "[]", "(document): must be a JSON object"),
    ],
)
def test_a_bad_edit_keeps_the_last_valid_value_and_the_next_valid_edit_applies(
    watched, caplog, file, stored, bad, problem
):
    stack, folder = watched
    good = (
        {"max_identifiers_per_type": {"default": 3}}
        if file == "rules.json"
        else {"api": {"keys": {"k": "v1"}}}
    )
    (folder / file).write_text(json.dumps(good))
    wait_for(lambda: stored(stack) == good, timeout=5)
    with caplog.at_level(logging.ERROR, logger="scrm_local.config_files"):
        (folder / file).write_text(bad if isinstance(bad, str) else json.dumps(bad))
        wait_for(lambda: any(problem in r.getMessage() for r in caplog.records), timeout=5)
    assert str(folder / file) in caplog.records[-1].getMessage()
    assert stored(stack) == good  # nothing was put
    edited = {**good, "edited": True}
    (folder / file).write_text(json.dumps(edited))  # still watched after the bad edit
    wait_for(lambda: stored(stack) == edited, timeout=5)


@pytest.mark.parametrize(
    ("file", "bad", "message"),
    [
        ("rules.json", {"default_rank": "high"}, "default_rank: Input should be a valid integer"),
        ("channels.json", "{not json", "(document): not valid JSON"),
    ],
)
def test_the_stack_refuses_to_start_with_an_invalid_file(tmp_path, file, bad, message):
    folder = write_config(tmp_path / "config", **{file.removesuffix(".json"): bad})
    stack = LocalStack(settings(folder))
    try:
        with pytest.raises(StackError) as raised:
            stack.start()
    finally:
        stack.stop()
    assert str(folder / file) in str(raised.value) and message in str(raised.value)
    assert not stack.ready


def test_scrm_local_run_exits_non_zero_naming_the_file_and_field(tmp_path):
    folder = write_config(tmp_path / "config", rules={"max_identifiers_per_type": "lots"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SCRM_"))}
    env.update(
        {
            "SCRM_TEMPLATE": str(TEMPLATE),
            "SCRM_PROJECT_ROOT": str(PROJECT),
            "SCRM_STACK_NAME": "refused-stack",
            "MOTO_PORT": str(free_port()),
            "PORT": str(free_port()),
            "SCRM_CHANNELS_FILE": str(folder / "channels.json"),
            "SCRM_RULES_FILE": str(folder / "rules.json"),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "scrm_local", "local", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert f"scrm: error: {folder / 'rules.json'} (SCRM_RULES_FILE, for RulesParameter)" in done.stderr
    assert "max_identifiers_per_type: Input should be a valid dictionary" in done.stderr
    assert "is ready" not in done.stdout
