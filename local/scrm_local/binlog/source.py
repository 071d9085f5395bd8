"""The MySQL/MariaDB server a binlog bridge reads: parsed from a `mysql://` URL, with the
connection settings both the bridge and mysql-replication use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

READ_TIMEOUT_SECONDS = 30  # no byte (not even a heartbeat) for this long: the server is gone
CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class MySqlSource:
    """`mysql://user:pass@host:3306/schema`: the server, and the one schema that is streamed."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    schema: str

    @classmethod
    def from_url(cls, url: str) -> MySqlSource:
        parts = urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
            raise ValueError(f"expected a mysql:// URL, got scheme {parts.scheme!r}")
        schema = unquote(parts.path.lstrip("/"))
        if not schema or "/" in schema:
            raise ValueError("the URL must name one database: mysql://user:pass@host:3306/database")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            schema=schema,
        )

    @property
    def label(self) -> str:
        """host:port/schema, without credentials (logs, checkpoint)."""
        return f"{self.host}:{self.port}/{self.schema}"

    def connection_settings(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "charset": "utf8mb4",
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "read_timeout": READ_TIMEOUT_SECONDS,
        }
