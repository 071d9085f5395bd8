"""The identity graph as evidence: every link between identifiers comes from an event that
named them together. Undoing a wrong link re-derives the profiles from that evidence."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


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
