"""Per-source metrics: one EMF document per source with a `source` dimension, lag values split
at the format's 100-values limit, counts never lost across a flush."""

import json

from scrm_sync.entrypoints.observability import SourceBreakdown


def documents(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_each_source_gets_its_own_document(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    breakdown = SourceBreakdown()
    breakdown.count("pos", "EventsSynced", 3)
    breakdown.count("douyin", "EventsFailed")
    breakdown.count("douyin", "FieldConflicts", 0)  # zero counts are not written
    for milliseconds in range(250):
        breakdown.lag("pos", float(milliseconds))
    breakdown.flush()
    docs = documents(capsys)
    assert [d["source"] for d in docs] == ["douyin", "pos", "pos", "pos"]
    assert all("source" in d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] for d in docs)
    assert docs[0]["EventsFailed"] == [1.0] and "FieldConflicts" not in docs[0]
    assert docs[1]["EventsSynced"] == [3.0]
    assert [len(d["SyncLag"]) for d in docs[1:]] == [100, 100, 50]
    assert sum(sum(d["SyncLag"]) for d in docs[1:]) == sum(range(250))
    breakdown.flush()  # nothing accumulated since: nothing written
    assert documents(capsys) == []
