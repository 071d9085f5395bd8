"""A MySQL (or MariaDB) table read page by page for the incremental pull, with pymysql.

Connection settings: the RDS secret format `{"host", "port", "username", "password", "dbname"}`
(what Secrets Manager's RDS integration and DMS use), read through Powertools Parameters with
caching, or a `mysql://user:password@host:port/db` URL (local use; also accepted as the secret's
value). Optional `ssl_ca` (secret key or URL query): a CA bundle path, turns on verified TLS.

Time zones: the session runs with `time_zone = '+00:00'`, so TIMESTAMP columns are read in UTC
and the watermark of a TIMESTAMP column is the same whatever the server's default zone. DATETIME
columns have no zone: their naive values are passed through as stored (ISO text in the DMS
record) and the table's `time_zone` setting says how to read them as commit times.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql
import pymysql.cursors
from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain.incremental_pull import KeysetQuery, PullConfigError
from ..services.ports import SourcePage


class MySqlConnectionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    host: str = Field(min_length=1)
    port: int = Field(3306, ge=1, le=65535)
    username: str = Field(min_length=1)
    password: str = Field("", repr=False)
    dbname: str | None = None  # tables are schema-qualified, so optional
    ssl_ca: str | None = None

    @classmethod
    def parse(cls, value: str | Mapping[str, Any]) -> MySqlConnectionSettings:
        """The RDS secret document (dict or JSON text) or a mysql:// URL. Errors name the fields
        at fault, never their values."""
        try:
            if not isinstance(value, str):
                return cls.model_validate(dict(value))
            text = value.strip()
            if text.startswith(("mysql://", "mariadb://")):
                return cls._from_url(text)
            try:
                document = json.loads(text)
            except json.JSONDecodeError:
                raise PullConfigError("MySQL source secret is neither JSON nor a mysql:// URL") from None
            if not isinstance(document, dict):
                raise PullConfigError("MySQL source secret must be a JSON object")
            return cls.model_validate(document)
        except PullConfigError:
            raise
        except ValidationError as exc:
            fields = ", ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PullConfigError(f"MySQL source settings: {fields}") from None
        except ValueError:  # a port that is not a number in a URL
            raise PullConfigError("MySQL source URL is malformed") from None

    @classmethod
    def _from_url(cls, url: str) -> MySqlConnectionSettings:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname or "",
            port=parts.port or 3306,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            dbname=unquote(parts.path.lstrip("/")) or None,
            ssl_ca=query["ssl_ca"][0] if "ssl_ca" in query else None,
        )


class MySqlSourceSecret:
    """The source's connection settings from Secrets Manager, cached for `max_age` seconds (a
    rotated password is picked up without a redeploy)."""

    def __init__(
        self, secret_id: str, max_age: int, provider: parameters.SecretsProvider | None = None
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._provider = provider  # None: Powertools' default provider (and its cache)

    def __call__(self) -> MySqlConnectionSettings:
        value: Any
        if self._provider is None:
            value = parameters.get_secret(self._secret_id, max_age=self._max_age)
        else:
            value = self._provider.get(self._secret_id, max_age=self._max_age)
        if isinstance(value, bytes):
            value = value.decode()
        if not isinstance(value, str | dict):
            raise PullConfigError("MySQL source secret has no value")
        return MySqlConnectionSettings.parse(value)


class _CountingConnection(pymysql.connections.Connection):
    """Counts the bytes read from the server (packet headers included), for the benchmark of rows
    and bytes read versus a full extract."""

    bytes_read = 0

    def _read_bytes(self, num_bytes: int) -> bytes:
        data: bytes = super()._read_bytes(num_bytes)
        self.bytes_read += len(data)
        return data


class MySqlRowSource:
    """One connection per run (closed by the service at the end), autocommit, so every page is
    a fresh read of committed rows."""

    def __init__(
        self,
        settings: Callable[[], MySqlConnectionSettings],
        connect_timeout: int = 5,
        read_timeout: int = 60,
    ) -> None:
        self._settings = settings
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._connection: _CountingConnection | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> MySqlRowSource:
        settings = MySqlConnectionSettings.parse(url)
        return cls(lambda: settings, **kwargs)

    def fetch(self, query: KeysetQuery) -> SourcePage:
        connection = self._connect()
        sql, params = query.sql()
        before = connection.bytes_read
        try:
            with connection.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute(sql, params)
                rows: list[dict[str, Any]] = list(cursor.fetchall())
        except pymysql.err.OperationalError:
            self.close()  # lost connection or timeout: reconnect on the next fetch
            raise
        return SourcePage(rows, connection.bytes_read - before)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.open:
            with contextlib.suppress(pymysql.err.Error):  # a broken connection: nothing to release
                connection.close()

    def _connect(self) -> _CountingConnection:
        if self._connection is not None and self._connection.open:
            return self._connection
        settings = self._settings()
        self._connection = _CountingConnection(
            host=settings.host,
            port=settings.port,
            user=settings.username,
            password=settings.password,
            database=settings.dbname,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            write_timeout=self._read_timeout,
            init_command="SET time_zone = '+00:00'",
            ssl_ca=settings.ssl_ca,
            program_name="scrm-incremental-pull",
        )
        return self._connection
