"""Crash-safe records of networks, sandboxes, endpoints and published ports (SQLite).

One database per engine root, ``<root>/network/network.db``. Every change is one
transaction; every change that also touches the kernel holds ``<root>/network/lock``
(``flock``) from the first write to the last, so two engine processes never
allocate the same address or port. An endpoint is written *before* its veth is
made (state ``creating``) and marked ``ready`` after, so that ``reconcile`` knows
what a crash left half-done.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path

from engine.store.locks import file_lock

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, driver TEXT NOT NULL, bridge TEXT UNIQUE NOT NULL,
    subnet TEXT NOT NULL, gateway TEXT NOT NULL, mtu INTEGER NOT NULL, internal INTEGER NOT NULL,
    attachable INTEGER NOT NULL, labels TEXT NOT NULL, options TEXT NOT NULL, created TEXT NOT NULL,
    is_default INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sandboxes (
    container_id TEXT PRIMARY KEY, mode TEXT NOT NULL, path TEXT, owned INTEGER NOT NULL,
    name TEXT NOT NULL, hostname TEXT NOT NULL, extra_hosts TEXT NOT NULL, dns TEXT NOT NULL,
    dns_search TEXT NOT NULL, dns_options TEXT NOT NULL, hosts_file TEXT, resolv_file TEXT,
    hostname_file TEXT, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY, network_id TEXT NOT NULL REFERENCES networks(id), container_id TEXT NOT NULL,
    ifname TEXT NOT NULL, host_ifname TEXT UNIQUE NOT NULL, ip TEXT NOT NULL, mac TEXT NOT NULL,
    aliases TEXT NOT NULL, state TEXT NOT NULL, seq INTEGER NOT NULL,
    UNIQUE (network_id, ip), UNIQUE (network_id, container_id)
);
CREATE TABLE IF NOT EXISTS ports (
    container_id TEXT NOT NULL, proto TEXT NOT NULL, host_ip TEXT NOT NULL, host_port INTEGER NOT NULL,
    container_port INTEGER NOT NULL, target_ip TEXT NOT NULL,
    UNIQUE (proto, host_ip, host_port)
);
"""


class State:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self.db.executescript(SCHEMA)

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection: a transaction of one thread is never seen half-done by another."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.directory / "network.db", isolation_level=None, timeout=30,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    @contextlib.contextmanager
    def locked(self):
        """Exclusive across processes and threads, for a change that spans the database and the kernel."""
        with file_lock(self.directory / "lock"):
            yield

    @contextlib.contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def all(self, sql: str, *args) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    def one(self, sql: str, *args) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)


def loads(text: str | None):
    return json.loads(text) if text else None
