"""The identity graph as evidence: every link between identifiers comes from an event that
named them together. Undoing a wrong link re-derives the profiles from that evidence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .identifiers import Identifier

DEFAULT_MAX_LINKS_PER_TYPE = 5


def link_limit(max_per_type: Mapping[str, int], identifier_type: str) -> int:
    """How many identifiers of one type a profile may link: the type's own limit, else the
    configured "default", else DEFAULT_MAX_LINKS_PER_TYPE (rules: `max_identifiers_per_type`)."""
    return max_per_type.get(identifier_type, max_per_type.get("default", DEFAULT_MAX_LINKS_PER_TYPE))


class _Linking(Protocol):
    @property
    def identifier(self) -> Identifier: ...


_L = TypeVar("_L", bound=_Linking)


def within_link_limits(
    links: Iterable[_L], linked: Mapping[str, int], max_per_type: Mapping[str, int]
) -> tuple[list[_L], list[_L]]:
    """The new links a profile can take, and those over its per-type limit, in the given order.

    `linked` counts the identifiers of each type the profile already links (none for a new
    profile); links of a type fit, first come first served, until the type's `link_limit`. The
    repositories apply the same rule under their write conditions, so it holds under concurrency.
    """
    room: dict[str, int] = {}
    allowed: list[_L] = []
    over: list[_L] = []
    for link in links:
        type_ = link.identifier.type
        if type_ not in room:
            room[type_] = link_limit(max_per_type, type_) - linked.get(type_, 0)
        if room[type_] > 0:
            room[type_] -= 1
            allowed.append(link)
        else:
            over.append(link)
    return allowed, over


@dataclass(frozen=True, slots=True)
class Component:
    """Identifiers that still belong together, and the events that say so."""

    identifier_keys: tuple[str, ...]
    event_keys: tuple[str, ...]


def split_components(
    identifier_keys: Iterable[str],
    events: Sequence[tuple[str, Sequence[str]]],
    removed_key: str,
) -> list[Component]:
    """Connected components of the profile's identifiers once `removed_key` is taken out.

    `events` are (event key, identifier keys named by the event), oldest evidence first. Two
    identifiers stay together when some chain of events names them; an event belongs to the
    component of its remaining identifiers (events that named only the removed identifier belong
    to no component). Components come out ordered by their oldest event, then by their keys.
    """
    keys = sorted(set(identifier_keys) - {removed_key})
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for _, named in events:
        present = [k for k in named if k in parent]
        for other in present[1:]:
            a, b = find(present[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)

    members: dict[str, list[str]] = {}
    for k in keys:
        members.setdefault(find(k), []).append(k)
    event_lists: dict[str, list[str]] = {root: [] for root in members}
    for event_key, named in events:
        roots = {find(k) for k in named if k in parent}
        for root in roots:  # at most one root: the event's identifiers are connected through it
            event_lists[root].append(event_key)

    position = {event_key: i for i, (event_key, _) in enumerate(events)}
    components = [Component(tuple(sorted(members[root])), tuple(event_lists[root])) for root in members]
    components.sort(
        key=lambda c: (position[c.event_keys[0]] if c.event_keys else len(position), c.identifier_keys)
    )
    return components
