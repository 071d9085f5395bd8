"""Where a binlog bridge stands: a transaction boundary (MariaDB GTID state or MySQL file and
position), and the checkpoint file that keeps the last one whose records are all in Kinesis."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BinlogPosition:
    """A transaction boundary. MariaDB: the GTID state, one `domain-server-seq` per replication
    domain ("" = before the first transaction); mysql-replication ignores file/position there.
    MySQL: the binlog file and the position after the last commit."""

    gtid: str | None = None
    log_file: str | None = None
    log_pos: int | None = None

    def after_gtid(self, gtid: str) -> BinlogPosition:
        """The state once transaction `gtid` is done (its domain's entry replaced)."""
        current = self.gtid or ""
        if "," not in current and current.split("-", 1)[0] in ("", gtid.split("-", 1)[0]):
            return BinlogPosition(gtid=gtid)  # one replication domain (the usual case): replaced whole
        by_domain = {entry.split("-", 1)[0]: entry for entry in (self.gtid or "").split(",") if entry}
        by_domain[gtid.split("-", 1)[0]] = gtid
        return BinlogPosition(gtid=",".join(by_domain[d] for d in sorted(by_domain, key=int)))

    @property
    def label(self) -> str:
        if self.gtid is not None:
            return f"gtid {self.gtid or '(start of binlog)'}"
        return f"{self.log_file}:{self.log_pos}"


class CheckpointFile:
    """The last transaction boundary whose records are all in Kinesis, as JSON, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, source_label: str) -> BinlogPosition | None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        if document.get("source") != source_label:
            log.warning(
                "binlog bridge: checkpoint %s belongs to %s, not %s; ignoring it",
                self.path,
                document.get("source"),
                source_label,
            )
            return None
        return BinlogPosition(document.get("gtid"), document.get("log_file"), document.get("log_pos"))

    def save(self, source_label: str, position: BinlogPosition) -> None:
        document = {
            "source": source_label,
            "gtid": position.gtid,
            "log_file": position.log_file,
            "log_pos": position.log_pos,
            "saved_at": datetime.now(UTC).isoformat(),
        }
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        except FileNotFoundError:  # the first save (a syscall less on every other one)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)  # readers see the old or the new file, never half of one
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
