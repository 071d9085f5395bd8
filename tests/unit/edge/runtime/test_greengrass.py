"""The Greengrass component: its recipe, the artifact the builder makes, and the Run step on that artifact."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from paho.mqtt.client import topic_matches_sub
from scrm_edge.runtime.component import parse_config
from scrm_edge.runtime.uplinks import HEALTH_TOPIC, GreengrassIpcUplink, MqttUplink, device_topic

from tests.unit.edge.runtime.support import make_score

ROOT = Path(__file__).resolve().parents[4]
RECIPE_PATH = ROOT / "greengrass" / "recipe.yaml"
ARTIFACT_URI = "s3://scrm-artifacts-test/com.scrm.DeviceHealth/1.2.3/scrm_edge.zip"


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_artifact", ROOT / "greengrass" / "build_artifact.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recipe() -> dict[str, Any]:
    return yaml.safe_load(RECIPE_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def linux(recipe: dict[str, Any]) -> dict[str, Any]:
    [manifest] = [m for m in recipe["Manifests"] if m["Platform"]["os"] == "linux"]
    return manifest


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load_builder().build_zip(tmp_path_factory.mktemp("build") / "scrm_edge.zip")


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Greengrass's recipe variables, as the nucleus fills them in."""
    for name, value in variables.items():
        text = text.replace("{" + name + "}", value)
    assert not re.search(r"\{[a-zA-Z_.]+:[^}]*\}", text), f"a recipe variable was not filled in: {text}"
    return text


def test_the_recipe_names_the_component_and_its_zip_artifact(
    recipe: dict[str, Any], linux: dict[str, Any]
) -> None:
    assert recipe["RecipeFormatVersion"] == "2020-01-25"
    assert recipe["ComponentName"] == "com.scrm.DeviceHealth"
    assert re.fullmatch(r"\d+\.\d+\.\d+", recipe["ComponentVersion"])
    [artifact_entry] = linux["Artifacts"]
    assert artifact_entry["URI"].startswith("s3://") and artifact_entry["URI"].endswith("/scrm_edge.zip")
    assert artifact_entry["Unarchive"] == "ZIP"
    assert set(linux["Lifecycle"]) >= {"Install", "Run", "Setenv"}


def test_the_builder_zips_the_package_and_its_requirements(artifact: Path) -> None:
    names = zipfile.ZipFile(artifact).namelist()
    assert "scrm_edge/__init__.py" in names
    assert "scrm_edge/__main__.py" in names
    assert {
        "scrm_edge/runtime/__init__.py",
        "scrm_edge/runtime/component.py",
        "scrm_edge/runtime/outbox.py",
    } <= set(names)
    assert "scrm_edge/vibration_zones.json" in names  # the packaged zone table
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    requirements = zipfile.ZipFile(artifact).read("requirements.txt").decode()
    packages = {
        re.split(r"[<>=]", line)[0] for line in requirements.splitlines() if line and not line.startswith("#")
    }
    assert {"numpy", "awsiotsdk"} <= packages


def test_the_builder_is_reproducible_and_fills_in_the_uri_and_version(tmp_path: Path) -> None:
    builder = load_builder()
    first = builder.build_zip(tmp_path / "a" / "scrm_edge.zip").read_bytes()
    second = builder.build_zip(tmp_path / "b" / "scrm_edge.zip").read_bytes()
    assert first == second
    assert (
        builder.main(["--artifact-uri", ARTIFACT_URI, "--version", "1.2.3", "--out", str(tmp_path / "out")])
        == 0
    )
    rendered = yaml.safe_load((tmp_path / "out" / "recipe.yaml").read_text(encoding="utf-8"))
    assert rendered["ComponentVersion"] == "1.2.3"
    assert rendered["Manifests"][0]["Artifacts"][0]["URI"] == ARTIFACT_URI
    assert (tmp_path / "out" / "scrm_edge.zip").read_bytes() == first
    with pytest.raises(ValueError, match=r"scrm_edge\.zip"):
        builder.render_recipe("s3://bucket/other.zip")
    assert builder.main(["--artifact-uri", "https://bucket/scrm_edge.zip", "--out", str(tmp_path / "x")]) == 2


def test_the_ipc_permission_covers_the_uplinks_topic(recipe: dict[str, Any]) -> None:
    policies = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"][
        "aws.greengrass.ipc.mqttproxy"
    ]
    [policy] = policies.values()
    assert policy["operations"] == ["aws.greengrass#PublishToIoTCore"]
    assert policy["resources"] == [HEALTH_TOPIC.format(device_id="+")]
    assert GreengrassIpcUplink().topic_template == HEALTH_TOPIC
    assert MqttUplink("broker").topic_template == HEALTH_TOPIC
    for device_id in ("pump-0042", "press-7:line.2", "GW_01"):
        topic = device_topic(make_score(device_id).to_json())
        assert topic_matches_sub(policy["resources"][0], topic)


def test_the_default_configuration_is_a_valid_edge_configuration(recipe: dict[str, Any]) -> None:
    edge = recipe["ComponentConfiguration"]["DefaultConfiguration"]["edge"]
    config = parse_config(json.loads(json.dumps(edge)), {"AWS_IOT_THING_NAME": "gateway-7"})
    assert config.device_id == "gateway-7"
    assert config.uplink["kind"] == "greengrass_ipc"
    assert config.source["kind"] == "serial"


def test_the_run_step_runs_scrm_edge_from_the_unpacked_artifact(
    recipe: dict[str, Any], linux: dict[str, Any], artifact: Path, tmp_path: Path
) -> None:
    """The Install/Run scripts as the nucleus would run them, on the artifact the builder made.

    The default configuration needs the AWS IoT Device SDK (not installed here), so the component
    gets as far as building its uplink and exits 2 naming it: the module was found in the artifact,
    the configuration was written from the recipe's, and the device id came from Greengrass.
    """
    decompressed = tmp_path / "artifacts-unarchived"
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(decompressed / "scrm_edge")  # a ZIP unpacks to a folder named after it
    work = tmp_path / "work"
    (work / "venv" / "bin").mkdir(parents=True)
    python = work / "venv" / "bin" / "python3"  # the Install step's venv, here the test's interpreter
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    variables = {
        "artifacts:decompressedPath": str(decompressed),
        "work:path": str(work),
        "configuration:/edge": json.dumps(recipe["ComponentConfiguration"]["DefaultConfiguration"]["edge"]),
    }
    lifecycle = linux["Lifecycle"]
    install = interpolate(lifecycle["Install"]["Script"], variables)
    requirements = re.search(r"-r (\S+)", install)
    assert requirements and Path(requirements.group(1)).is_file()
    run = interpolate(lifecycle["Run"]["Script"], variables)
    assert re.search(r"-m scrm_edge\b", run)
    environment = {key: interpolate(value, variables) for key, value in lifecycle["Setenv"].items()}
    environment = {**os.environ, **environment, "AWS_IOT_THING_NAME": "gateway-7"}
    environment.pop("SCRM_API_KEY", None)

    located = subprocess.run(
        [str(python), "-c", "import scrm_edge.runtime.component as c; print(c.__file__)"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(located.stdout.strip()).is_relative_to(decompressed)

    result = subprocess.run(
        ["/bin/sh", "-c", run],
        cwd=tmp_path,  # the script goes to the work folder itself
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "uplink.kind: greengrass_ipc needs the AWS IoT Device SDK" in result.stderr
    assert json.loads((work / "config.json").read_text()) == json.loads(variables["configuration:/edge"])
