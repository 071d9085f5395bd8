"""Undo a wrong link: the profile splits along its remaining links, and every resulting profile
gets its fields recomputed from its own events (POST /profiles/{profile_id}/unlink)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..domain.identifiers import Identifier
from ..domain.identity_graph import split_components
from ..domain.profile import EventRecord, fields_from_events
from .ports import ConcurrentChange, NewProfile, ProfileRepository, SplitPlan

MAX_ATTEMPTS = 5


class NotLinked(LookupError):
    """The identifier is not linked to this profile."""


class CannotUnlink(ValueError):
    """The unlink would leave the profile without any identifier."""


@dataclass(frozen=True, slots=True)
class UnlinkOutcome:
    profile_id: str
    unlinked: Identifier
    unlinked_profile_id: str
    split_off: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "profile_id": self.profile_id,
            "unlinked": self.unlinked.as_dict(),
            "unlinked_profile_id": self.unlinked_profile_id,
            "split_off": list(self.split_off),
        }


def _derived_id(profile_id: str, anchor: str) -> str:
    """Deterministic id for a split-off profile, so a repeated unlink plans the same ids."""
    return "p_" + hashlib.sha256(f"{profile_id}|{anchor}".encode()).hexdigest()[:32]


class IdentityUnlink:
    def __init__(self, repository: ProfileRepository) -> None:
        self._repo = repository

    def unlink(
        self, profile_id: str, identifier: Identifier, reason: str, requested_by: str
    ) -> UnlinkOutcome:
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._attempt(profile_id, identifier, reason, requested_by)
            except ConcurrentChange:
                continue
        raise ConcurrentChange("the profile kept changing; try the unlink again")

    def _attempt(
        self, profile_id: str, identifier: Identifier, reason: str, requested_by: str
    ) -> UnlinkOutcome:
        live = self._repo.resolve(profile_id)
        members = self._repo.members(live)
        keys = {link.identifier.key for link in self._repo.links_of(members)}
        target = identifier.key
        if target not in keys:
            raise NotLinked(f"{identifier.type} is not linked to profile {profile_id}")
        if keys == {target}:
            raise CannotUnlink("it is the profile's only identifier")

        records = sorted(self._repo.event_records(members), key=lambda r: (r.occurred_at, r.key))
        by_key = {r.key: r for r in records}
        evidence = [(r.key, [k for k in r.identifier_keys if k in keys]) for r in records]
        components = split_components(keys, evidence, target)
        placed = {event for c in components for event in c.event_keys}
        alone = [r.key for r in records if r.key not in placed and target in r.identifier_keys]
        # events with no surviving evidence (e.g. only over-limit identifiers) stay where they were
        orphans = [r.key for r in records if r.key not in placed and r.key not in alone]

        kept, *others = components
        kept_events = [*kept.event_keys, *orphans]
        _, current = self._repo.field_versions(live)
        new_profiles = tuple(
            NewProfile(
                _derived_id(live, c.identifier_keys[0]),
                fields_from_events(by_key[k] for k in c.event_keys),
                c.identifier_keys,
            )
            for c in others
        )
        unlinked_profile = NewProfile(
            _derived_id(live, target), fields_from_events(_records(by_key, alone)), (target,)
        )
        self._repo.split(
            SplitPlan(
                profile_id=live,
                members=tuple(members),
                expected_versions={name: version.key for name, (_, version) in current.items()},
                kept_fields=fields_from_events(_records(by_key, kept_events)),
                new_profiles=new_profiles,
                unlinked_key=target,
                unlinked_profile=unlinked_profile,
                reason=reason,
                requested_by=requested_by,
            )
        )
        for new, component in zip(new_profiles, others, strict=True):
            self._repo.move_evidence(members, new.profile_id, component.event_keys)
        self._repo.move_evidence(members, unlinked_profile.profile_id, alone)
        return UnlinkOutcome(
            live, identifier, unlinked_profile.profile_id, tuple(p.profile_id for p in new_profiles)
        )


def _records(by_key: dict[str, EventRecord], keys: list[str]) -> list[EventRecord]:
    return [by_key[k] for k in keys]
