"""Property: any order, any duplication, any number of concurrent workers -> the same profiles,
equal to the reference model (in-memory repository; tests/integration runs it against moto).
Events go through the batch-staged path as the sync function runs it: random queue batches,
events of one profile in the same batch, batches in flight at once."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.sync import ProfileSync

from tests.sync_model import RULES_DOC, actual_profiles, event_sets, expected_profiles, sync_in_batches

RULES = load_rules(RULES_DOC)


def run(events, random, workers=1):
    repo = InMemoryProfileRepository()
    sync_in_batches(ProfileSync(repo, lambda: RULES), events, random, workers)

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
    assert run(delivered, random) == expected_profiles(events, RULES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets(min_size=4), st.randoms(use_true_random=False))
def test_four_concurrent_workers_give_the_reference_profiles(events, random):
    delivered = events * 2
    random.shuffle(delivered)
    assert run(delivered, random, workers=4) == expected_profiles(events, RULES)
