"""A private MariaDB server with a ROW binlog, started for the tests that need a real MySQL source.

The machine's own MariaDB service is never touched: each instance gets its own data directory,
port and socket, starts in about a second and is stopped by PID (see local-aws.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql

from tests.ports import free_port

_SERVER_CANDIDATES = ("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
_INSTALL_CANDIDATES = ("mariadb-install-db", "/usr/bin/mariadb-install-db", "mysql_install_db")


def _find(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def mariadb_available() -> bool:
    return _find(_SERVER_CANDIDATES) is not None and _find(_INSTALL_CANDIDATES) is not None


@dataclass(frozen=True)
class MariaDB:
    host: str
    port: int
    user: str
    datadir: Path
    pid: int

    def url(self, database: str) -> str:
        return f"mysql://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str | None = None, **kwargs: object) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password="",
            database=database,
            autocommit=True,
            charset="utf8mb4",
            **kwargs,
        )

    def execute(self, sql: str, args: object = None, database: str | None = None) -> None:
        with contextlib.closing(self.connect(database)) as conn, conn.cursor() as cursor:
            cursor.execute(sql, args)

    def create_database(self, name: str) -> None:
        self.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")

    def run_sql_file(self, path: Path) -> None:
        """The statements of a schema file such as config/pos_schema.sql (`--` comments allowed)."""
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        for statement in code.split(";"):
            if statement.strip():
                self.execute(statement)


@contextlib.contextmanager
def running_mariadb(server_id: int = 1) -> Iterator[MariaDB]:
    server, install = _find(_SERVER_CANDIDATES), _find(_INSTALL_CANDIDATES)
    if server is None or install is None:
        raise RuntimeError("MariaDB server binaries not found (apt-get install mariadb-server)")
    root = Path(tempfile.mkdtemp(prefix="scrm-mariadb-"))
    datadir = root / "data"
    subprocess.run(
        [
            install,
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process: subprocess.Popen[bytes] | None = None
    try:
        # a free port can be taken by a parallel test between the probe and the bind: try again
        for attempt in range(3):
            process, instance = _start(server, root, datadir, server_id)
            if _wait_ready(process, instance):
                break
            _stop(process)
            if attempt == 2:
                log = (root / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"MariaDB did not start:\n{log}")
        yield instance
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _start(server: str, root: Path, datadir: Path, server_id: int) -> tuple[subprocess.Popen[bytes], MariaDB]:
    port = free_port()
    process = subprocess.Popen(
        [
            server,
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--socket={root / 'mysqld.sock'}",
            "--log-bin=binlog",
            "--binlog-format=ROW",
            "--binlog-row-image=FULL",
            "--binlog-row-metadata=FULL",
            f"--server-id={server_id}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=2",
            "--sync-binlog=0",
            f"--log-error={root / 'error.log'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, MariaDB("127.0.0.1", port, "root", datadir, process.pid)


def _wait_ready(process: subprocess.Popen[bytes], instance: MariaDB, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            instance.execute("SELECT 1")
            return True
        except pymysql.err.OperationalError:
            if process.poll() is not None:
                return False
            time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
