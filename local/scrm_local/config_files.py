"""Local config files loaded into template resources, declared in one table.

Each binding puts a JSON file's content into a resource the template declares (a Secrets
Manager secret or an SSM parameter). Watched bindings are re-put when the file changes
(mtime poll), so e.g. rule edits apply without restarting the stack.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .aws import Clients
from .template import Template

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileBinding:
    logical_id: str
    env_var: str
    default_path: str  # relative to the project root
    watch: bool = False

    def path(self, env: Mapping[str, str], project_root: Path) -> Path:
        value = env.get(self.env_var)
        return Path(value) if value else project_root / self.default_path


BINDINGS: tuple[FileBinding, ...] = (
    FileBinding("ChannelCredentialsSecret", "SCRM_CHANNELS_FILE", "config/channels.dev.json"),
    FileBinding("RulesParameter", "SCRM_RULES_FILE", "config/rules.dev.json", watch=True),
)


def _put(template: Template, clients: Clients, binding: FileBinding, text: str) -> None:
    rtype = template.resource_type(binding.logical_id)
    name = template.resolver.resource(binding.logical_id).name
    if rtype == "AWS::SecretsManager::Secret":
        clients("secretsmanager").put_secret_value(SecretId=name, SecretString=text)
    elif rtype == "AWS::SSM::Parameter":
        clients("ssm").put_parameter(Name=name, Value=text, Overwrite=True)
    else:
        raise ValueError(f"{binding.logical_id}: cannot load a file into a {rtype}")


def load_file(template: Template, clients: Clients, binding: FileBinding, path: Path) -> bool:
    """Put the file's JSON into the resource; False (with a log line) when it cannot."""
    if not path.is_file():
        log.warning(
            "%s: %s not found (set %s); keeping the template's value",
            binding.logical_id,
            path,
            binding.env_var,
        )
        return False
    text = path.read_text(encoding="utf-8")
    try:
        json.loads(text)
    except ValueError as exc:
        log.error("%s: %s is not valid JSON (%s); keeping the previous value", binding.logical_id, path, exc)
        return False
    _put(template, clients, binding, text)
    log.info("%s <- %s", binding.logical_id, path)
    return True


class ConfigFiles:
    """Loads every binding whose resource the template declares, then watches the watched ones."""

    def __init__(
        self,
        template: Template,
        clients: Clients,
        env: Mapping[str, str],
        project_root: Path,
        interval: float = 1.0,
        bindings: tuple[FileBinding, ...] = BINDINGS,
    ) -> None:
        self.template = template
        self.clients = clients
        declared = set(template.logical_ids())
        self.bindings = [(b, b.path(env, project_root)) for b in bindings if b.logical_id in declared]
        self.interval = interval
        self._seen: dict[str, tuple[int, int] | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="scrm-config-watch", daemon=True)

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int] | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def load_all(self) -> None:
        for binding, path in self.bindings:
            self._seen[binding.logical_id] = self._stamp(path)
            load_file(self.template, self.clients, binding, path)

    def check(self) -> None:
        """Re-put each watched file whose mtime or size changed since the last look."""
        for binding, path in self.bindings:
            if not binding.watch:
                continue
            stamp = self._stamp(path)
            if stamp != self._seen.get(binding.logical_id):
                self._seen[binding.logical_id] = stamp
                if stamp is not None:
                    load_file(self.template, self.clients, binding, path)

    def start(self) -> None:
        if any(b.watch for b, _ in self.bindings):
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                log.exception("watching config files failed")
