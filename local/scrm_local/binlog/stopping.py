"""Stopping a binlog bridge at once: the exception that ends its thread, and the registry of
every connection it (and mysql-replication) opened, whose sockets stop() shuts down."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import weakref
from typing import Any

import pymysql


class BridgeStopped(Exception):
    """Raised inside the bridge's thread once a stop is requested (ends retries, refuses reconnects)."""


_stopping_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def _not_from_a_stopping_bridge(_record: logging.LogRecord) -> bool:
    # stop() cuts the replication socket; mysql-replication then warns that it reconnects
    return threading.current_thread() not in _stopping_threads


logging.getLogger("pymysqlreplication").addFilter(_not_from_a_stopping_bridge)


def silence_reconnect_warnings(thread: threading.Thread) -> None:
    """mysql-replication's reconnect warnings from `thread` are expected from now on: drop them."""
    _stopping_threads.add(thread)


class InterruptibleConnections:
    """Opens every connection of one bridge session, so another thread can interrupt them all."""

    def __init__(self) -> None:
        self._connections: list[pymysql.connections.Connection] = []
        self._lock = threading.Lock()

    def forget(self) -> None:
        """A new session starts: the previous one's connections are closed already."""
        with self._lock:
            self._connections.clear()

    def connect(self, stop: threading.Event, **settings: Any) -> pymysql.connections.Connection:
        """pymysql.connect, refused with BridgeStopped once `stop` is set."""
        if stop.is_set():
            raise BridgeStopped  # also ends mysql-replication's own reconnect after stop()
        if "db" in settings:  # mysql-replication still uses pymysql's deprecated name
            settings["database"] = settings.pop("db")
        connection = pymysql.connect(**settings)
        with self._lock:
            self._connections.append(connection)
        if stop.is_set():  # stop() ran while we connected: its interrupt missed this one
            connection.close()
            raise BridgeStopped
        return connection

    def interrupt(self) -> None:
        # Closing a pymysql connection from another thread blocks while its reader is blocked;
        # shutting the socket down wakes the blocked read at once (mysql-replication then tries
        # to reconnect, which connect() refuses).
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            sock = getattr(connection, "_sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
