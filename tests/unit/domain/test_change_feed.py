"""Change documents from the profiles and identity stream images."""

from __future__ import annotations

from datetime import UTC, datetime

from scrm_sync.domain.change_feed import bounded, compact_json, identity_documents, profile_document

AT = datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC)


def image(**fields: object) -> dict[str, object]:
    item: dict[str, object] = {"pk": "p1", "sk": "PROFILE"}
    for name, (value, source) in fields.items():  # type: ignore[misc]
        item[f"v:{name}"] = value
        item[f"m:{name}"] = {"s": source, "e": f"ev-{name}-{value}", "t": "2026-12-03T08:59:00Z", "k": "x"}
    return item


def test_a_field_change_names_old_new_and_source_with_a_stable_id():
    old, new = image(member_level=("silver", "pos")), image(member_level=("gold", "mdm"))
    first = profile_document("p1", "4200", AT, old, new)
    again = profile_document("p1", "4200", AT, old, new)
    assert first is not None and first == again  # a redelivered record: the same id
    assert first["kinds"] == ["fields"]
    assert first["fields"]["member_level"] == {
        "old": "silver",
        "new": "gold",
        "source": "mdm",
        "event_id": "ev-member_level-gold",
        "occurred_at": "2026-12-03T08:59:00Z",
    }
    assert first["id"].startswith("chg_") and first["type"] == "profile.changed" and first["version"] == 1
    assert first["changed_at"] == "2026-12-03T09:00:00Z"
    other = profile_document("p1", "4201", AT, old, new)
    assert other is not None and other["id"] != first["id"]


def test_sequences_sort_as_text_in_stream_order():
    docs = [
        profile_document("p1", seq, AT, image(a=("1", "pos")), image(a=("2", "pos"))) for seq in ("99", "100")
    ]
    assert docs[0] is not None and docs[1] is not None
    assert docs[0]["sequence"] < docs[1]["sequence"]


def test_counters_and_timestamps_alone_are_no_change():
    old, new = image(a=("1", "pos")), image(a=("1", "pos"))
    new["updated_at"], new["n:phone"] = "later", 2
    assert profile_document("p1", "1", AT, old, new) is None


def test_merges_and_splits_are_their_own_kinds():
    merged = profile_document(
        "p1", "5", AT, {"pk": "p1"}, {"pk": "p1", "redirect_to": "p2", "merged_by_event": "e"}
    )
    assert merged is not None and merged["kinds"] == ["merged_into"] and merged["merged_into"] == "p2"
    survivor = profile_document("p2", "6", AT, {"merged_from": []}, {"merged_from": ["p1"]})
    assert survivor is not None and survivor["merged_from"] == ["p1"]


def test_identity_changes_add_to_the_new_owner_and_remove_from_the_old():
    linked = {"identifier_key": "phone##+8613900139000", "profile_id": "p1"}
    [added] = identity_documents("7", AT, None, linked)
    assert added["profile_id"] == "p1" and added["kinds"] == ["identifiers"]
    assert added["identifiers"] == {"added": [{"type": "phone", "value": "+8613900139000"}], "removed": []}
    moved = identity_documents("8", AT, linked, {**linked, "profile_id": "p2"})
    assert [(d["profile_id"], bool(d["identifiers"]["removed"])) for d in moved] == [
        ("p1", True),
        ("p2", False),
    ]
    assert len({d["id"] for d in moved}) == 2
    assert identity_documents("9", AT, linked, {**linked, "link_blocked": True}) == []


def test_oversized_documents_keep_names_and_sources_but_not_values():
    big = "x" * 5000
    doc = profile_document("p1", "1", AT, image(note=("a", "pos")), image(note=(big, "pos")))
    assert doc is not None
    trimmed = bounded(doc, 1000)
    assert trimmed["truncated"] is True
    assert trimmed["fields"]["note"]["source"] == "pos"
    assert "new" not in trimmed["fields"]["note"] and "old" not in trimmed["fields"]["note"]
    assert bounded(doc, len(compact_json(doc).encode())) == doc
