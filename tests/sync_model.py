"""A small reference model of the sync rules, written independently of the implementation:
identity = connected components of identifiers named together by an event (blocklisted values
excluded); fields = per component, the write with the greatest (rank, time or inverted time for
write-once fields, source, event id). Property tests compare the real sync core against it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any

from hypothesis import strategies as st
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.identifiers import normalize_identifier
from scrm_sync.domain.rules import Rules
from scrm_sync.services.sync import UnlinkableEvent

from tests.factories import T0

PHONES = ["13800000001", "13800000002", "13800000003", "13800000004"]
BLOCKED_PHONE = "02155550100"
OPENIDS = ["o-1", "o-2", "o-3", "o-4"]
MEMBERS = ["M1", "M2", "M3"]
FIELDS = ["name", "level", "contract_no", "address"]
SOURCES = ["mdm", "pos", "wecom", "youzan"]
RULES_DOC = {
    "identifier_blocklist": {"phone": [BLOCKED_PHONE]},
    "max_identifiers_per_type": {"default": 50},  # limits are first-come by nature: not part of this property
}

identifier_strategy = st.one_of(
    st.sampled_from([*PHONES, BLOCKED_PHONE]).map(lambda v: {"type": "phone", "value": v}),
    st.sampled_from(OPENIDS).map(lambda v: {"type": "wechat_openid", "value": v, "scope": "wx-app"}),
    st.sampled_from(MEMBERS).map(lambda v: {"type": "member_no", "value": v, "scope": "loyalty"}),
)


@st.composite
def event_sets(draw: Any, min_size: int = 1, max_size: int = 12) -> list[CanonicalEvent]:
    count = draw(st.integers(min_size, max_size))
    events = []
    for i in range(count):
        identifiers = draw(st.lists(identifier_strategy, min_size=1, max_size=3))
        attributes = draw(
            st.dictionaries(
                st.sampled_from(FIELDS), st.one_of(st.none(), st.sampled_from(["a", "b", "c"])), max_size=3
            )
        )
        events.append(
            CanonicalEvent.model_validate(
                {
                    "event_id": f"e{i}",
                    "source": draw(st.sampled_from(SOURCES)),
                    "type": "profile.updated",
                    "occurred_at": T0.replace(second=draw(st.integers(0, 4))).isoformat(),  # many ties
                    "identifiers": identifiers,
                    "attributes": attributes,
                }
            )
        )
    return events


def expected_profiles(events: Iterable[CanonicalEvent], rules: Rules) -> dict[frozenset[str], dict[str, Any]]:
    """{identifier keys of one profile: attributes} according to the rules, computed naively."""
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent[k] != k:
            k = parent[k]
        return k

    linked: list[tuple[CanonicalEvent, list[str]]] = []
    for event in events:
        keys = []
        for raw in event.identifiers:
            ident = normalize_identifier(raw.type, raw.value, raw.scope)
            if not rules.is_blocklisted(ident.type, ident.value):
                keys.append(ident.key)
        if not keys:
            continue
        for k in keys:
            parent.setdefault(k, k)
        for other in keys[1:]:
            a, b = find(keys[0]), find(other)
            if a != b:
                parent[a] = b
        linked.append((event, keys))

    groups: dict[str, set[str]] = {}
    for k in parent:
        groups.setdefault(find(k), set()).add(k)
    best: dict[str, dict[str, tuple[tuple[Any, ...], Any]]] = {root: {} for root in groups}
    for event, keys in linked:
        root = find(keys[0])
        when = event.occurred_at.astimezone(UTC)
        for name, value in event.attributes.items():
            rank = rules.rank_of(event.source)
            order = -when.timestamp() if rules.is_write_once(name) else when.timestamp()
            candidate = ((rank, order, event.source + "|" + event.event_id), value)
            if name not in best[root] or best[root][name][0] < candidate[0]:
                best[root][name] = candidate
    return {
        frozenset(groups[root]): {n: v for n, (_, v) in sorted(best[root].items()) if v is not None}
        for root in groups
    }


def actual_profiles(lookup_profile: Any, keys: Iterable[str]) -> dict[frozenset[str], dict[str, Any]]:
    """Read every identifier's profile back through the repository and group them."""
    profiles: dict[str, dict[str, Any]] = {}
    for key in keys:
        profile = lookup_profile(key)
        assert profile is not None, f"{key} has no profile"
        profiles[profile["profile_id"]] = profile
    return {
        frozenset(f"{i['type']}#{i.get('scope', '')}#{i['value']}" for i in p["identifiers"]): p["attributes"]
        for p in profiles.values()
    }


def sync_in_batches(sync: Any, delivered: list[CanonicalEvent], random: Any, workers: int = 1) -> None:
    """Deliver events the way ProfileSyncFunction gets them: in queue batches of random sizes,
    each staged (one identity read, per-event writes overlapping on threads, evidence last), with
    `workers` batches in flight at once (concurrent Lambda environments). An event that cannot
    link a profile fails alone, as it would in its batch."""
    batches: list[list[CanonicalEvent]] = []
    rest = list(delivered)
    while rest:
        size = random.randint(1, 10)
        batches.append(rest[:size])
        rest = rest[size:]

    def run_batch(batch: list[CanonicalEvent]) -> None:
        staged = sync.batch(batch)

        def apply(event: CanonicalEvent) -> None:
            with contextlib.suppress(UnlinkableEvent):
                staged.apply(event)

        with ThreadPoolExecutor(3) as records:
            list(records.map(apply, batch))
        staged.finish()

    if workers == 1:
        for batch in batches:
            run_batch(batch)
    else:
        with ThreadPoolExecutor(workers) as environments:
            list(environments.map(run_batch, batches))
