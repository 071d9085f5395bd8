"""The per-type identifier limit: one rule (domain/identity_graph.py) for new profiles, both
repositories and the rules document."""

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.identifiers import Identifier
from scrm_sync.domain.identity_graph import DEFAULT_MAX_LINKS_PER_TYPE, link_limit, within_link_limits
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.ports import IdentityLink


@dataclass(frozen=True)
class Link:
    identifier: Identifier


def links(*specs: str) -> list[Link]:
    return [Link(Identifier(spec.split(":")[0], spec, "s")) for spec in specs]


def test_a_type_uses_its_own_limit_else_the_default_else_five():
    assert link_limit({"email": 2, "default": 3}, "email") == 2
    assert link_limit({"email": 2, "default": 3}, "phone") == 3
    assert link_limit({"email": 2}, "phone") == DEFAULT_MAX_LINKS_PER_TYPE == 5
    assert load_rules({}).max_identifiers_per_type == {"default": DEFAULT_MAX_LINKS_PER_TYPE}
    assert load_rules({"max_identifiers_per_type": {"email": 2}}).max_links("phone") == 5


def test_links_fit_first_come_first_served_per_type():
    new = links("email:a", "phone:1", "email:b", "email:c", "phone:2")
    allowed, over = within_link_limits(new, {}, {"email": 2, "default": 1})
    assert allowed == [new[0], new[1], new[2]]
    assert over == [new[3], new[4]]


def test_identifiers_already_linked_take_room():
    new = links("email:a", "email:b", "phone:1")
    allowed, over = within_link_limits(new, {"email": 1, "phone": 7}, {"email": 2, "phone": 9})
    assert allowed == [new[0], new[2]]
    assert over == [new[1]]


def test_a_profile_at_or_over_its_limit_takes_no_more():
    new = links("email:a")
    assert within_link_limits(new, {"email": 3}, {"email": 2}) == ([], new)
    assert within_link_limits(new, {"email": 2}, {"email": 2}) == ([], new)


@given(
    st.lists(st.sampled_from(["phone", "email", "member_no"]), max_size=20),
    st.dictionaries(st.sampled_from(["phone", "email"]), st.integers(0, 6), max_size=2),
    st.dictionaries(st.sampled_from(["phone", "email", "default"]), st.integers(0, 6), max_size=3),
)
def test_the_split_keeps_order_and_never_exceeds_a_limit(types, linked, limits):
    new = [Link(Identifier(t, str(i), "s")) for i, t in enumerate(types)]
    allowed, over = within_link_limits(new, linked, limits)
    assert sorted(allowed + over, key=new.index) == new
    assert allowed == [lk for lk in new if lk in allowed]
    for type_ in set(types):
        took = sum(1 for lk in allowed if lk.identifier.type == type_)
        assert took == max(0, min(types.count(type_), link_limit(limits, type_) - linked.get(type_, 0)))


def test_the_in_memory_repository_applies_the_rule_over_existing_links():
    repo = InMemoryProfileRepository()
    first = [IdentityLink(Identifier("email", f"{i}@x.cn"), "p1", "pos", "e1") for i in range(2)]
    assert repo.create_profile("p1", [], first).created
    more = [IdentityLink(Identifier("email", f"{i}@x.cn"), "p1", "pos", "e2") for i in range(1, 5)]
    result = repo.link("p1", more, {"email": 3})
    assert result.linked == [more[1].identifier]  # 1@x.cn is already ours; one more fits
    assert result.over_limit == [more[2].identifier, more[3].identifier]
