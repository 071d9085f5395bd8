"""Profile read use cases (GET /profiles...)."""

from __future__ import annotations

from typing import Any

from ..domain.identifiers import normalize_identifier
from ..domain.rules import Rules
from .archive import ArchivedOrders
from .ports import ProfileRepository

MAX_TIMELINE_LIMIT = 200


class ProfileQueries:
    def __init__(self, repository: ProfileRepository, archived: ArchivedOrders | None = None) -> None:
        self._repo = repository
        self._archived = archived

    def find(self, rules: Rules, type_: str, value: str, scope: str | None) -> dict[str, Any] | None:
        """Look a profile up by any identifier, normalized exactly like ingest
        (raises InvalidIdentifier for a value that can never match)."""
        identifier = normalize_identifier(type_, value, scope, rules.default_phone_region)
        owner = self._repo.owners([identifier.key]).get(identifier.key)
        return self.get(owner.profile_id) if owner else None

    def get(self, profile_id: str) -> dict[str, Any] | None:
        profile = self._repo.load(profile_id)
        return profile.to_dict() if profile else None

    def timeline(self, profile_id: str, limit: int) -> dict[str, Any] | None:
        live = self._repo.resolve(profile_id)
        if self._repo.load(live) is None:
            return None
        ids = [live, *self._repo.merged_from(live)]
        timeline: dict[str, Any] = {"profile_id": live, "entries": self._repo.timeline(ids, limit)}
        if self._archived is not None:
            timeline["archived_orders"] = self._archived.notice(ids)  # None: nothing archived
        return timeline
