"""Where a running `scrm local run` can be found: a small JSON file under the project's
.local-state/, written when the stack is ready and removed when it stops, so the `scrm` tools
attach to this project's stack without MOTO_PORT being exported again (and never to somebody
else's stack on the default port)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .settings import Settings

STATE_FILE = Path(".local-state/stack.json")  # under the project root


def state_path(settings: Settings) -> Path:
    return settings.project_root / STATE_FILE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_state(settings: Settings) -> Path | None:
    """Record this stack for the tools, unless another live stack of this project already did
    (a second stack on other ports, e.g. a test run's, never takes the developer's tools away)."""
    path = state_path(settings)
    owner = read_state(path).get("pid")
    if isinstance(owner, int) and owner != os.getpid() and _alive(owner):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "pid": os.getpid(),
        "stack_name": settings.stack_name,
        "moto_port": settings.moto_port,
        "http_port": settings.http_port,
        "template": str(settings.template_path),
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2), encoding="utf-8")
    temporary.replace(path)
    return path


def remove_state(settings: Settings) -> None:
    path = state_path(settings)
    try:
        if read_state(path).get("pid") == os.getpid():
            path.unlink()
    except OSError:
        pass


def read_state(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def running_stack(settings: Settings, env: dict[str, str] | os._Environ[str]) -> Settings:
    """The settings of this project's running stack: explicit MOTO_PORT / PORT /
    SCRM_STACK_NAME win; otherwise what the state file of a live `scrm local run` says."""
    state = read_state(state_path(settings))
    pid = state.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return settings
    found = settings
    if not env.get("MOTO_PORT") and isinstance(state.get("moto_port"), int):
        found = replace(found, moto_port=state["moto_port"])
    if not env.get("PORT") and isinstance(state.get("http_port"), int):
        found = replace(found, http_port=state["http_port"])
    if not env.get("SCRM_STACK_NAME") and isinstance(state.get("stack_name"), str):
        found = replace(found, stack_name=state["stack_name"])
    return found
