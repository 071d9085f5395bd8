"""Suppression in the sync core, for any order and any redelivery: once a person is erased (their
identifiers suppressed, their links gone, their profile a tombstone), no event naming any of their
identifiers, however spelled and whenever it arrives, writes anything; everyone else syncs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.identifiers import normalize_identifier
from scrm_sync.domain.privacy import suppression_key
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync

RULES = load_rules({})
SALT = b"dev-only-salt-" + b"z" * 40
T0 = datetime(2026, 12, 3, tzinfo=UTC)
ERASED_PHONE, OTHER_PHONE = "13911112222", "13911113333"
SPELLINGS = {ERASED_PHONE: ("13911112222", "+86 139 1111 2222"), OTHER_PHONE: ("13911113333",)}


def event(n: int, phone: str, spelling: int, member: bool) -> CanonicalEvent:
    value = SPELLINGS[phone][spelling % len(SPELLINGS[phone])]
    identifiers = [{"type": "phone", "value": value}]
    if member:
        identifiers.append({"type": "member_no", "value": f"M-{phone[-4:]}", "scope": "pos"})
    return CanonicalEvent.model_validate(
        {
            "event_id": f"e{n}",
            "source": "pos",
            "type": "profile.updated",
            "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
            "identifiers": identifiers,
            "attributes": {"name": f"name-{phone[-4:]}-{n}"},
        }
    )


def erase(repo: InMemoryProfileRepository, phone: str) -> None:
    """What an erasure leaves in the stores the sync reads: suppression first, then the links
    gone and the profile a tombstone."""
    (profile,) = {repo.identity[normalize_identifier("phone", phone).key].profile_id}
    keys = repo.identity.keys_of([profile])
    repo.suppression |= {suppression_key(key, SALT) for key in keys}
    for key in keys:
        del repo.identity[key]
    repo.profiles[profile].erased_by = "er-1"
    repo.profiles[profile].fields.clear()


events = st.lists(
    st.tuples(st.sampled_from([ERASED_PHONE, OTHER_PHONE]), st.integers(0, 3), st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=events, after=events, redelivered=st.lists(st.integers(0, 11), max_size=6))
def test_an_erased_person_never_comes_back(before, after, redelivered) -> None:
    repo = InMemoryProfileRepository()
    sync = ProfileSync(repo, lambda: RULES, suppression_salt=lambda: SALT)
    first = [event(n, *spec) for n, spec in enumerate(before)]
    # the person exists before the erasure (at least their first event)
    for e in [event(99, ERASED_PHONE, 0, True), *first]:
        sync.apply(e)
    erase(repo, ERASED_PHONE)
    later = [event(100 + n, *spec) for n, spec in enumerate(after)]
    replays = [first[i] for i in redelivered if i < len(first)]
    outcomes = {e.event_id: sync.apply(e) for e in [*later, *replays]}

    queries = ProfileQueries(repo)
    assert queries.find(RULES, "phone", ERASED_PHONE, None) is None
    assert queries.find(RULES, "member_no", "M-2222", "pos") is None
    for e in [*later, *replays]:
        names_erased = any(ERASED_PHONE[-8:] in i.value.replace(" ", "") for i in e.identifiers)
        assert outcomes[e.event_id].suppressed == names_erased
    if any(spec[0] == OTHER_PHONE for spec in after):
        other = queries.find(RULES, "phone", OTHER_PHONE, None)
        assert other is not None and "name" in other["attributes"]
