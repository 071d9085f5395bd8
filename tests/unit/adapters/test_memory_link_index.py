"""The in-memory repository indexes identifier links by profile (as the identity table's GSI does),
so a merge reads and moves only the loser's links; the index always agrees with the links."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.identifiers import Identifier
from scrm_sync.services.ports import IdentityLink

KEYS = [Identifier("phone", f"+861380013800{i}").key for i in range(6)]
PROFILES = ["p_a", "p_b", "p_c"]
operations = st.lists(
    st.tuples(
        st.sampled_from(["set", "delete", "repoint"]), st.sampled_from(KEYS), st.sampled_from(PROFILES)
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_the_profile_index_always_agrees_with_the_links(steps: list[tuple[str, str, str]]) -> None:
    repo = InMemoryProfileRepository()
    for operation, key, profile in steps:
        if operation == "set":
            repo.identity[key] = IdentityLink(Identifier.from_key(key), profile, "pos", "e-1")
        elif operation == "delete" and key in repo.identity:
            del repo.identity[key]
        elif operation == "repoint":
            repo.repoint_identifiers(
                repo.identity[key].profile_id if key in repo.identity else profile, profile
            )
    for profile in PROFILES:
        expected = sorted(k for k, link in repo.identity.items() if link.profile_id == profile)
        assert repo.identity.keys_of([profile]) == expected
        assert [link.identifier.key for link in repo.links_of([profile])] == expected


def test_a_merge_moves_only_the_losers_links() -> None:
    repo = InMemoryProfileRepository()
    for i in range(1000):
        key = f"member_no#pos#M{i}"
        repo.identity[key] = IdentityLink(Identifier.from_key(key), f"p_other{i}", "pos", "e")
    repo.identity["member_no#pos#LOSER"] = IdentityLink(
        Identifier.from_key("member_no#pos#LOSER"), "p_l", "pos", "e"
    )
    before = repo.requests
    assert repo.repoint_identifiers("p_l", "p_s") == 1
    assert repo.requests - before == 2  # one query, one moved link: not one per link held
    assert repo.identity.keys_of(["p_s"]) == ["member_no#pos#LOSER"]
