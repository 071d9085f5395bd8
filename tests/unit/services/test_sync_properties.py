"""Property: any order, any duplication, any number of concurrent workers -> the same profiles,
equal to the reference model (in-memory repository; tests/integration runs it against moto)."""

import contextlib
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.sync import ProfileSync, UnlinkableEvent

from tests.sync_model import RULES_DOC, actual_profiles, event_sets, expected_profiles

RULES = load_rules(RULES_DOC)


def run(events, workers=1):
    repo = InMemoryProfileRepository()
    sync = ProfileSync(repo, lambda: RULES)

    def apply(event):
        with contextlib.suppress(UnlinkableEvent):
            sync.apply(event)

    if workers == 1:
        for event in events:
            apply(event)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(apply, events))

    def lookup(key):
        owner = repo.owners([key]).get(key)
        profile = repo.load(owner.profile_id) if owner else None
        return profile.to_dict() if profile else None

    return actual_profiles(lookup, [k for k, link in repo.identity.items()])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets(), st.randoms(use_true_random=False))
def test_any_order_and_duplication_gives_the_reference_profiles(events, random):
    delivered = events + random.sample(events, k=len(events) // 2)  # at-least-once: duplicates
    random.shuffle(delivered)
    assert run(delivered) == expected_profiles(events, RULES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets(min_size=4), st.randoms(use_true_random=False))
def test_four_concurrent_workers_give_the_reference_profiles(events, random):
    delivered = events * 2
    random.shuffle(delivered)
    assert run(delivered, workers=4) == expected_profiles(events, RULES)
