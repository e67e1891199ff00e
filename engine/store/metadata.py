"""Image records in SQLite: images, tags, repo digests, and the blobs and layers each uses.

One transaction records a whole image, so a process killed mid-pull leaves either
the whole image or nothing of it in the records. Blobs and layer directories that
no record uses are garbage, removed by ``image prune`` and by a failed pull.

    meta = MetadataStore(root / "images.db")
    meta.record_image(record, tags=["docker.io/library/busybox:latest"], ...)
    meta.resolve_tag("docker.io/library/busybox:latest")   # -> "sha256:…" image id
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,             -- the config digest, as Docker's image id
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    created TEXT NOT NULL,
    os TEXT NOT NULL,
    architecture TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    added REAL NOT NULL,
    last_tag_time REAL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,           -- docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS repo_digests (
    name TEXT PRIMARY KEY,           -- docker.io/library/busybox@sha256:…
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS image_blobs (
    image_id TEXT NOT NULL REFERENCES images(id),
    digest TEXT NOT NULL,
    PRIMARY KEY (image_id, digest)
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id),
    position INTEGER NOT NULL,        -- 0 is the lowest layer
    diff_id TEXT NOT NULL,
    blob_digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE TABLE IF NOT EXISTS layers (
    diff_id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,            -- bytes once unpacked (the tar's file data)
    entries INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_sources (
    digest TEXT NOT NULL,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    PRIMARY KEY (digest, registry, repository)
);
"""


@dataclass
class ImageRecord:
    id: str
    manifest_digest: str
    manifest_media_type: str
    created: str
    os: str
    architecture: str
    variant: str
    size: int
    added: float = field(default_factory=time.time)
    last_tag_time: float | None = None


@dataclass
class LayerRecord:
    position: int
    diff_id: str
    blob_digest: str
    media_type: str
    blob_size: int
    size: int
    entries: int


class MetadataStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        with self.connect() as db:
            for attempt in range(100):
                try:
                    db.execute("PRAGMA journal_mode=WAL")  # persistent: set once per database
                    break
                except sqlite3.OperationalError:  # another process is switching it right now
                    time.sleep(0.05)
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def transaction(self):
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writing ---------------------------------------------------------

    def record_image(
        self,
        image: ImageRecord,
        *,
        layers: list[LayerRecord],
        blobs: list[str],
        tags: list[str] = (),
        repo_digests: list[str] = (),
        sources: list[tuple[str, str, str]] = (),
    ) -> list[str]:
        """Record an image with its tags in one transaction; return the tags moved off other images."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO images (id, manifest_digest, manifest_media_type, created, os,"
                " architecture, variant, size, added, last_tag_time)"
                " VALUES (?,?,?,?,?,?,?,?, COALESCE((SELECT added FROM images WHERE id=?), ?), ?)",
                (image.id, image.manifest_digest, image.manifest_media_type, image.created, image.os,
                 image.architecture, image.variant, image.size, image.id, image.added,
                 time.time() if tags else image.last_tag_time),
            )
            db.execute("DELETE FROM image_layers WHERE image_id=?", (image.id,))
            for layer in layers:
                db.execute(
                    "INSERT INTO image_layers VALUES (?,?,?,?,?,?)",
                    (image.id, layer.position, layer.diff_id, layer.blob_digest, layer.media_type, layer.blob_size),
                )
                db.execute("INSERT OR IGNORE INTO layers VALUES (?,?,?)", (layer.diff_id, layer.size, layer.entries))
            for digest in set(blobs):
                db.execute("INSERT OR IGNORE INTO image_blobs VALUES (?,?)", (image.id, digest))
            moved = []
            for name in tags:
                row = db.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
                if row and row["image_id"] != image.id:
                    moved.append(row["image_id"])
                db.execute("INSERT OR REPLACE INTO tags VALUES (?,?)", (name, image.id))
            for name in repo_digests:
                db.execute("INSERT OR REPLACE INTO repo_digests VALUES (?,?)", (name, image.id))
            for source in sources:
                db.execute("INSERT OR IGNORE INTO blob_sources VALUES (?,?,?)", source)
            return moved

    def set_tag(self, name: str, image_id: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO tags VALUES (?,?)", (name, image_id))
            db.execute("UPDATE images SET last_tag_time=? WHERE id=?", (time.time(), image_id))

    def remove_tag(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM tags WHERE name=?", (name,))

    def remove_repo_digest(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM repo_digests WHERE name=?", (name,))

    def delete_image(self, image_id: str) -> None:
        with self.transaction() as db:
            for table in ("tags", "repo_digests", "image_blobs", "image_layers"):
                db.execute(f"DELETE FROM {table} WHERE image_id=?", (image_id,))
            db.execute("DELETE FROM images WHERE id=?", (image_id,))
            db.execute("DELETE FROM layers WHERE diff_id NOT IN (SELECT diff_id FROM image_layers)")

    # -- reading ---------------------------------------------------------

    def _rows(self, sql: str, args=()) -> list[sqlite3.Row]:
        with self.connect() as db:
            return db.execute(sql, args).fetchall()

    def image(self, image_id: str) -> ImageRecord | None:
        rows = self._rows("SELECT * FROM images WHERE id=?", (image_id,))
        return ImageRecord(**dict(rows[0])) if rows else None

    def images(self) -> list[ImageRecord]:
        return [ImageRecord(**dict(r)) for r in self._rows("SELECT * FROM images ORDER BY added DESC")]

    def image_ids_with_prefix(self, prefix: str) -> list[str]:
        return [r["id"] for r in self._rows("SELECT id FROM images WHERE id LIKE ?", (prefix + "%",))]

    def resolve_tag(self, name: str) -> str | None:
        rows = self._rows("SELECT image_id FROM tags WHERE name=?", (name,))
        return rows[0]["image_id"] if rows else None

    def resolve_repo_digest(self, name: str) -> str | None:
        rows = self._rows("SELECT image_id FROM repo_digests WHERE name=?", (name,))
        return rows[0]["image_id"] if rows else None

    def tags(self, image_id: str | None = None) -> list[tuple[str, str]]:
        if image_id is None:
            return [(r["name"], r["image_id"]) for r in self._rows("SELECT * FROM tags ORDER BY name")]
        return [(r["name"], r["image_id"]) for r in self._rows("SELECT * FROM tags WHERE image_id=? ORDER BY name", (image_id,))]

    def repo_digests(self, image_id: str) -> list[str]:
        return [r["name"] for r in self._rows("SELECT name FROM repo_digests WHERE image_id=? ORDER BY name", (image_id,))]

    def layers(self, image_id: str) -> list[LayerRecord]:
        rows = self._rows(
            "SELECT il.*, l.size, l.entries FROM image_layers il JOIN layers l USING (diff_id)"
            " WHERE il.image_id=? ORDER BY il.position", (image_id,))
        return [LayerRecord(r["position"], r["diff_id"], r["blob_digest"], r["media_type"], r["blob_size"],
                            r["size"], r["entries"]) for r in rows]

    def blob_refcounts(self) -> dict[str, int]:
        """How many images use each blob: a blob with no count is garbage."""
        return {r["digest"]: r["n"] for r in self._rows("SELECT digest, COUNT(*) AS n FROM image_blobs GROUP BY digest")}

    def used_diff_ids(self) -> set[str]:
        return {r["diff_id"] for r in self._rows("SELECT DISTINCT diff_id FROM image_layers")}

    def blob_sources(self, digest: str, registry: str) -> list[str]:
        return [r["repository"] for r in self._rows(
            "SELECT repository FROM blob_sources WHERE digest=? AND registry=?", (digest, registry))]

    def forget_sources(self, keep: set[str]) -> None:
        with self.transaction() as db:
            for r in db.execute("SELECT DISTINCT digest FROM blob_sources").fetchall():
                if r["digest"] not in keep:
                    db.execute("DELETE FROM blob_sources WHERE digest=?", (r["digest"],))
