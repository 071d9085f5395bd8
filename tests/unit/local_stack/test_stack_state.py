"""The state file that lets the `scrm` tools find this project's running stack."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from scrm_local.settings import Settings
from scrm_local.stack_state import remove_state, running_stack, state_path, write_state


def settings(tmp_path: Path) -> Settings:
    return Settings(template_path=tmp_path / "template.yaml", project_root=tmp_path)


def test_the_tools_find_the_running_stack_unless_told_otherwise(tmp_path: Path) -> None:
    running = replace(settings(tmp_path), moto_port=5701, http_port=3701, stack_name="mine")
    assert write_state(running) == state_path(running)
    found = running_stack(settings(tmp_path), {})
    assert (found.moto_port, found.http_port, found.stack_name) == (5701, 3701, "mine")
    explicit = running_stack(settings(tmp_path), {"MOTO_PORT": "5999"})
    assert explicit.moto_port == settings(tmp_path).moto_port  # MOTO_PORT set: the file is not used
    remove_state(running)
    assert not state_path(running).exists()
    assert running_stack(settings(tmp_path), {}).moto_port == settings(tmp_path).moto_port


def test_a_dead_stacks_file_is_ignored_and_a_live_one_is_not_overwritten(tmp_path: Path) -> None:
    path = state_path(settings(tmp_path))
    path.parent.mkdir(parents=True)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(finished.stdout)
    path.write_text(json.dumps({"pid": dead_pid, "moto_port": 5702}))
    assert running_stack(settings(tmp_path), {}).moto_port == settings(tmp_path).moto_port

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path.write_text(json.dumps({"pid": other.pid, "moto_port": 5703}))
        assert write_state(replace(settings(tmp_path), moto_port=5704)) is None
        assert json.loads(path.read_text())["moto_port"] == 5703
        remove_state(settings(tmp_path))  # not ours: stays
        assert path.exists()
    finally:
        other.kill()
        other.wait()
