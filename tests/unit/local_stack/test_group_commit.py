"""Group commit in the binlog bridge: how the records of many transactions share PutRecords calls
and where the checkpoint stands meanwhile (a recording send and save here; the bridge tests in
tests/integration run it against MariaDB and a Kinesis client)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scrm_local.binlog.checkpoint import BinlogPosition
from scrm_local.binlog.group_commit import GroupCommit
from scrm_sync.domain.cdc import StreamRecord

from tests.waiting import wait_for

START = BinlogPosition(gtid="0-1-0")


class Crash(BaseException):
    """Ends the sender like a killed process would."""


class Kinesis:
    """Records each batch sent (by its records' data) and each checkpoint saved (by its GTID)."""

    def __init__(self, fail_call: int | None = None, crash_save: int | None = None) -> None:
        self.batches: list[list[bytes]] = []
        self.saved: list[str] = []
        self._fail_call = fail_call
        self._crash_save = crash_save

    def send(self, batch: list[StreamRecord]) -> None:
        if len(self.batches) + 1 == self._fail_call:
            raise RuntimeError("Kinesis is away")
        self.batches.append([r.data for r in batch])

    def save(self, position: BinlogPosition) -> None:
        if len(self.saved) + 1 == self._crash_save:
            raise Crash
        self.saved.append(str(position.gtid))

    @property
    def sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches]


def group_commit(kinesis: Kinesis, linger: float = 3600) -> GroupCommit:
    """A linger longer than any test unless given: then only the limits and close() send."""
    return GroupCommit(kinesis.send, kinesis.save, start=START, saved=START, linger=linger)


def records(transaction: int, count: int, size: int = 10) -> list[StreamRecord]:
    return [StreamRecord(f"t{transaction}.{n}", b"x" * size) for n in range(count)]


def at(transaction: int) -> BinlogPosition:
    return BinlogPosition(gtid=f"0-1-{transaction}")


def test_transactions_share_calls_and_a_straddling_one_is_checkpointed_after_its_last_record() -> None:
    kinesis = Kinesis()
    commits = group_commit(kinesis)
    commits.add(records(1, 300), at(1))
    commits.add(records(2, 300), at(2))  # its first 200 records complete the first call
    wait_for(lambda: kinesis.saved == ["0-1-1"])
    assert kinesis.sizes == [500]
    assert commits.position == at(1)

    commits.close()  # sends the 100 left and checkpoints the second transaction
    assert kinesis.sizes == [500, 100]
    assert kinesis.saved == ["0-1-1", "0-1-2"]
    sent = [data for batch in kinesis.batches for data in batch]
    assert len(sent) == 600  # every record once, in the order added


def test_a_call_carries_at_most_5_mb() -> None:
    kinesis = Kinesis()
    commits = group_commit(kinesis)
    for transaction in range(1, 13):
        commits.add(records(transaction, 1, size=1_000_000), at(transaction))
    commits.close()
    assert kinesis.sizes == [5, 5, 2]
    assert kinesis.saved == ["0-1-5", "0-1-10", "0-1-12"]


def test_a_lone_record_is_sent_once_it_has_lingered() -> None:
    kinesis = Kinesis()
    commits = group_commit(kinesis, linger=0.05)
    commits.add(records(1, 1), at(1))
    wait_for(lambda: kinesis.saved == ["0-1-1"])  # neither a full call nor close() sent it
    assert kinesis.sizes == [1]
    commits.close()
    assert kinesis.sizes == [1]


def test_a_boundary_without_records_is_checkpointed_only_once_what_precedes_it_is_sent() -> None:
    kinesis = Kinesis()
    commits = group_commit(kinesis)
    commits.add(records(1, 1), at(1))
    commits.add([], at(2))  # transactions of other schemas
    commits.add([], at(3))
    assert commits.position == START  # the record of the first transaction is not sent yet
    commits.close()
    assert kinesis.sizes == [1]
    assert kinesis.saved == ["0-1-3"]


def test_after_a_failed_send_the_position_stays_after_the_last_transaction_all_sent() -> None:
    kinesis = Kinesis(fail_call=2)
    commits = group_commit(kinesis)
    commits.add(records(1, 500), at(1))
    wait_for(lambda: kinesis.saved == ["0-1-1"])
    commits.add(records(2, 10), at(2))
    commits.close()  # the second call fails: the next session reads transaction 2 again
    assert commits.position == at(1)
    assert kinesis.saved == ["0-1-1"]
    with pytest.raises(RuntimeError, match="away"):
        commits.raise_failure()


def _crashes(action: Callable[[], None]) -> bool:
    try:
        action()
    except Crash:
        return True
    return False


def test_a_crash_of_the_sender_reaches_the_reader() -> None:
    kinesis = Kinesis(crash_save=1)
    commits = group_commit(kinesis)
    commits.add(records(1, 500), at(1))  # sent at once; its checkpoint crashes
    wait_for(lambda: commits.failure is not None)
    assert _crashes(lambda: commits.add(records(2, 1), at(2)))
    assert _crashes(commits.close)
    assert kinesis.sizes == [500] and kinesis.saved == []
    assert commits.position == at(1)  # sent, not checkpointed: a restart sends it again
