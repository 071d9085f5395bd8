"""`scrm rules check FILE` and `scrm channels check FILE`: offline, the functions' parser, OK or
every problem by field path, exit status 0/1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scrm_local import cli

ROOT = Path(__file__).resolve().parents[3]
SCRM = Path(sys.executable).with_name("scrm")


def write(tmp_path: Path, document: object, name: str = "doc.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def test_the_shipped_rules_file_is_ok(capsys):
    assert cli.main(["rules", "check", str(ROOT / "config/rules.dev.json")]) == 0
    assert capsys.readouterr().out.strip().endswith("OK, a valid rules document")


def test_an_invalid_rules_file_lists_every_problem_and_exits_1(tmp_path, capsys):
    path = write(
        tmp_path, {"max_identifiers_per_type": "lots", "default_rank": -1, "source_rank": {"pos": 1e6}}
    )
    assert cli.main(["rules", "check", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: invalid rules document, 3 problem(s):"
    assert "  max_identifiers_per_type: Input should be a valid dictionary" in out
    assert "  default_rank: Input should be greater than or equal to 0" in out
    assert "  source_rank: Value error, rank of 'pos' must be within 0..9999" in out


@pytest.mark.parametrize("text", ["{not json", "[]", "\ufeff{}"])
def test_a_file_that_is_not_one_json_object_is_invalid(tmp_path, capsys, text):
    assert cli.main(["rules", "check", str(write(tmp_path, text))]) == 1
    assert "(document): " in capsys.readouterr().out


def test_channels_are_checked_with_the_credentials_model(tmp_path, capsys):
    assert cli.main(["channels", "check", str(ROOT / "config/channels.dev.json")]) == 0
    bad = write(tmp_path, {"wecom": "corp-secret", "api": {"keys": "k"}})
    assert cli.main(["channels", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "  wecom: Input should be a valid dictionary" in out and "  api.keys: " in out
    assert "corp-secret" not in out  # messages name the field, not the secret


def test_a_missing_file_is_an_error(tmp_path, capsys):
    assert cli.main(["rules", "check", str(tmp_path / "absent.json")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_the_installed_command_needs_no_running_stack(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MOTO_PORT": "1"}  # nothing listens there
    good = subprocess.run(
        [str(SCRM), "rules", "check", str(write(tmp_path, {"default_rank": 3}))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (good.returncode, good.stdout.strip().endswith("OK, a valid rules document")) == (0, True)
    bad = subprocess.run(
        [str(SCRM), "rules", "check", str(write(tmp_path, {"default_rank": "x"}, "bad.json"))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "default_rank: Input should be a valid integer" in bad.stdout
