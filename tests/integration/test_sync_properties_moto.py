"""The property of tests/unit/services/test_sync_properties.py against DynamoDB (moto, tables from
template.yaml): duplicated events in any order, in random queue batches through the batch-staged
path, 4 batches in flight at once with the real DynamoDB adapter, give exactly the reference
model's profiles."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.dynamodb import DynamoProfileRepository
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync

from tests.integration.conftest import build_resources
from tests.sync_model import RULES_DOC, actual_profiles, event_sets, expected_profiles, sync_in_batches

RULES = load_rules(RULES_DOC)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(event_sets(min_size=4, max_size=10), st.randoms(use_true_random=False))
def test_four_concurrent_workers_on_dynamodb_give_the_reference_profiles(moto_endpoint, events, random):
    resources = build_resources(moto_endpoint)  # fresh tables for every example
    repo = DynamoProfileRepository(
        resources.clients("dynamodb"),
        resources.table("ProfilesTable"),
        resources.table("IdentityTable"),
        resources.table("TimelineTable"),
    )
    delivered = events * 2  # every event delivered twice (at-least-once)
    random.shuffle(delivered)
    sync_in_batches(ProfileSync(repo, lambda: RULES), delivered, random, workers=4)

    expected = expected_profiles(events, RULES)
    keys = [key for group in expected for key in group]

    def lookup(key):
        owner = repo.owners([key]).get(key)
        return ProfileQueries(repo).get(owner.profile_id) if owner else None

    assert actual_profiles(lookup, keys) == expected
