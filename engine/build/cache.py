"""The build cache: each step's result, keyed by what decides it, kept in SQLite under the engine root.

Words: a build *state* is an image in the making (its layers, config and
history); its *state id* hashes the layers' diff ids and the config, so two ways
to the same files and settings are one state. A step's *key* hashes the parent's
state id, the instruction as written, the values of the build args it uses and,
for ``COPY``/``ADD``, the content and metadata of the files it copies. The cache
maps key → resulting state. A hit is used only while every layer it names is
still on disk (``image prune`` may have collected the layers of a stage that no
image keeps); otherwise the step runs again and its entry is replaced.

    cache = BuildCache(root)
    state = cache.get(key, svc)          # None on a miss
    cache.put(key, state)
    cache.prune()                        # ``builder prune``: forget everything

It lives in ``<root>/build/cache.db``, so it survives restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.store.metadata import LayerRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,          -- JSON: layers, config, history
    created REAL NOT NULL,
    last_used REAL NOT NULL
);
"""


@dataclass
class State:
    """An image in the making. ``config`` is the whole OCI config document without rootfs/history."""

    layers: list[LayerRecord] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    base_id: str = ""        # the FROM image, for messages

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    def id(self) -> str:
        doc = {"diff_ids": self.diff_ids, "config": self.config.get("config", {}),
               "os": self.config.get("os"), "architecture": self.config.get("architecture")}
        return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def copy(self) -> "State":
        return State([LayerRecord(**vars(layer)) for layer in self.layers], json.loads(json.dumps(self.config)),
                     [dict(h) for h in self.history], self.base_id)

    def to_json(self) -> str:
        return json.dumps({"layers": [vars(layer) for layer in self.layers], "config": self.config,
                           "history": self.history, "base_id": self.base_id}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "State":
        doc = json.loads(text)
        return cls([LayerRecord(**layer) for layer in doc["layers"]], doc["config"], doc["history"],
                   doc.get("base_id", ""))


def step_key(parent: State, instruction: str, args: dict[str, str], content: str = "") -> str:
    doc = {"parent": parent.id(), "instruction": instruction, "args": sorted(args.items()), "content": content}
    return "sha256:" + hashlib.sha256(json.dumps(doc).encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path):
        self.dir = Path(root) / "build"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "cache.db"
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        # A lost write costs a cache miss, never a wrong hit (layers are on disk before an entry
        # names them): no fsync per step.
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()

    def get(self, key: str, svc) -> State | None:
        with self.connect() as db:
            row = db.execute("SELECT state FROM steps WHERE key=?", (key,)).fetchone()
            if row is None:
                return None
            state = State.from_json(row[0])
            for layer in state.layers:
                if svc.layer_info(layer.diff_id) is None or not svc.blobs.has(layer.blob_digest):
                    db.execute("DELETE FROM steps WHERE key=?", (key,))
                    return None
            db.execute("UPDATE steps SET last_used=? WHERE key=?", (time.time(), key))
            return state

    def put(self, key: str, state: State) -> None:
        now = time.time()
        with self.connect() as db:
            db.execute("INSERT OR REPLACE INTO steps VALUES (?,?,?,?)", (key, state.to_json(), now, now))

    def count(self) -> int:
        with self.connect() as db:
            return db.execute("SELECT COUNT(*) FROM steps").fetchone()[0]

    def used_diff_ids(self) -> set[str]:
        """Layers the cache refers to (for a garbage collector that wants to keep them)."""
        return self.used()[0]

    def used(self) -> tuple[set[str], set[str]]:
        """(diff ids, blob digests) of every layer the cache refers to."""
        layers, blobs = set(), set()
        with self.connect() as db:
            for (text,) in db.execute("SELECT state FROM steps"):
                for layer in json.loads(text)["layers"]:
                    layers.add(layer["diff_id"])
                    if layer.get("blob_digest"):
                        blobs.add(layer["blob_digest"])
        return layers, blobs

    def prune(self) -> int:
        """Forget every entry; return how many there were."""
        with self.connect() as db:
            n = db.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
            db.execute("DELETE FROM steps")
            return n


def cached_content(root: Path) -> tuple[set[str], set[str]]:
    """What the build cache of an engine root keeps from the garbage collector
    (``engine.api.Engine`` passes it to the ``ImageService`` as a keeper)."""
    if not (Path(root) / "build" / "cache.db").exists():
        return set(), set()
    return BuildCache(root).used()

