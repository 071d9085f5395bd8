"""Local config files loaded into template resources, declared in one table.

Each binding puts a JSON file's content into a resource the template declares (a Secrets
Manager secret or an SSM parameter) and is re-put when the file changes (mtime poll), so rule
and channel edits apply without restarting the stack.

A file is validated with the layer's own parser first (scrm_sync.domain.config_documents, the
one the functions use): the stack refuses to start with an invalid file, and a bad edit while it
runs is logged and never put, so the resource keeps its last valid value and the functions keep
serving it. The next valid edit applies as usual.

`${SCRM_LOCAL_API}` in a file becomes the running stack's own URL (http://127.0.0.1:<PORT>), so
the dev channels file can point a channel's `api_base` at a fake the stack serves on whatever
port it got (the sidebar's WeCom, see sidebar_dev).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scrm_sync.domain.config_documents import CHANNELS, RULES, ConfigDocument, InvalidDocument

from .aws import Clients
from .settings import Settings
from .template import Template

log = logging.getLogger(__name__)

# The functions cache both documents for RulesCacheSeconds (60 s by default, right for AWS), so a
# local edit would take up to a minute to apply, with or without the file watcher. The local
# stack uses this instead unless SCRM_PARAMETER_OVERRIDES sets it.
LOCAL_CACHE_OVERRIDES: Mapping[str, str] = {"RulesCacheSeconds": "2"}
LOCAL_API_PLACEHOLDER = "${SCRM_LOCAL_API}"


@dataclass(frozen=True)
class FileBinding:
    logical_id: str
    env_var: str
    default_path: str  # relative to the project root
    document: ConfigDocument[Any]  # what the functions will parse the resource's value as

    def path(self, env: Mapping[str, str], project_root: Path) -> Path:
        value = env.get(self.env_var)
        return Path(value) if value else project_root / self.default_path


BINDINGS: tuple[FileBinding, ...] = (
    FileBinding("ChannelCredentialsSecret", "SCRM_CHANNELS_FILE", "config/channels.dev.json", CHANNELS),
    FileBinding("RulesParameter", "SCRM_RULES_FILE", "config/rules.dev.json", RULES),
)


class InvalidConfigFile(ValueError):
    """A config file the functions would reject: not JSON, or not a valid document."""


def with_local_cache(settings: Settings, template_document: Mapping[str, Any]) -> Settings:
    """Settings whose parameter overrides shorten the functions' config cache (see
    LOCAL_CACHE_OVERRIDES), for the parameters the template declares and the user left alone."""
    declared = template_document.get("Parameters") or {}
    added = {
        name: value
        for name, value in LOCAL_CACHE_OVERRIDES.items()
        if name in declared and name not in settings.parameter_overrides
    }
    if not added:
        return settings
    return replace(settings, parameter_overrides={**settings.parameter_overrides, **added})


def _put(template: Template, clients: Clients, binding: FileBinding, text: str) -> None:
    rtype = template.resource_type(binding.logical_id)
    name = template.resolver.resource(binding.logical_id).name
    if rtype == "AWS::SecretsManager::Secret":
        clients("secretsmanager").put_secret_value(SecretId=name, SecretString=text)
    elif rtype == "AWS::SSM::Parameter":
        clients("ssm").put_parameter(Name=name, Value=text, Overwrite=True)
    else:
        raise ValueError(f"{binding.logical_id}: cannot load a file into a {rtype}")


def valid_text(binding: FileBinding, path: Path, substitutions: Mapping[str, str] | None = None) -> str:
    """The file's text, placeholders substituted, when the functions would accept it (the very
    text that is put); else InvalidConfigFile naming the file and every problem."""
    where = f"{path} ({binding.env_var}, for {binding.logical_id})"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidConfigFile(f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for placeholder, value in (substitutions or {}).items():
        text = text.replace(placeholder, value)
    try:
        binding.document.parse(text)
    except InvalidDocument as exc:
        problems = "\n".join(f"  {problem}" for problem in exc.problems)
        raise InvalidConfigFile(
            f"{where} is not a valid {binding.document.name} document:\n{problems}"
        ) from None
    return text


def load_file(
    template: Template,
    clients: Clients,
    binding: FileBinding,
    path: Path,
    substitutions: Mapping[str, str] | None = None,
) -> bool:
    """Put the file's JSON into the resource; False (with a log line) when there is no file,
    InvalidConfigFile (nothing put) when it is invalid."""
    if not path.is_file():
        log.warning(
            "%s: %s not found (set %s); keeping the template's value",
            binding.logical_id,
            path,
            binding.env_var,
        )
        return False
    _put(template, clients, binding, valid_text(binding, path, substitutions))
    log.info("%s <- %s", binding.logical_id, path)
    return True


class ConfigFiles:
    """Loads every binding whose resource the template declares, then watches them."""

    def __init__(
        self,
        template: Template,
        clients: Clients,
        env: Mapping[str, str],
        project_root: Path,
        interval: float = 1.0,
        bindings: tuple[FileBinding, ...] = BINDINGS,
        substitutions: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.substitutions = dict(substitutions or {})
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
        """Put every file; InvalidConfigFile for the first invalid one (the stack refuses it)."""
        for binding, path in self.bindings:
            self._seen[binding.logical_id] = self._stamp(path)
            load_file(self.template, self.clients, binding, path, self.substitutions)

    def check(self) -> None:
        """Re-put each file whose mtime or size changed since the last look, if it is valid."""
        for binding, path in self.bindings:
            stamp = self._stamp(path)
            if stamp == self._seen.get(binding.logical_id):
                continue
            self._seen[binding.logical_id] = stamp
            if stamp is None:
                continue
            try:
                load_file(self.template, self.clients, binding, path, self.substitutions)
            except InvalidConfigFile as exc:
                log.error("%s\nkeeping the last valid value of %s", exc, binding.logical_id)

    def start(self) -> None:
        if self.bindings:
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
