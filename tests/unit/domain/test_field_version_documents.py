"""One encoding of a field version, shared by the profile item (`m:<field>`) and event records."""

from scrm_sync.domain.precedence import FieldVersion, FieldWrite
from scrm_sync.domain.profile import EventRecord, version_from_document, version_to_document

VERSION = FieldVersion("0050000063901234567890pos|e1", "pos", "2026-11-01T00:00:00+00:00", "e1")


def test_a_version_is_stored_as_k_s_t_e_and_reads_back():
    document = version_to_document(VERSION)
    assert document == {
        "k": "0050000063901234567890pos|e1",
        "s": "pos",
        "t": "2026-11-01T00:00:00+00:00",
        "e": "e1",
    }
    assert version_from_document(document) == VERSION
    assert version_from_document({**document, "field": "name", "value": "x"}) == VERSION


def test_event_record_writes_use_the_same_encoding():
    record = EventRecord(
        "pos",
        "e1",
        "profile.updated",
        VERSION.occurred_at,
        ("phone##+86",),
        (FieldWrite("name", "Li", VERSION),),
    )
    document = record.to_document()
    assert document["writes"] == [{"field": "name", "value": "Li", **version_to_document(VERSION)}]
    assert list(document["writes"][0]) == ["field", "value", "k", "s", "t", "e"]
    assert EventRecord.from_document(document) == record
