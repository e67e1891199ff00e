"""Where the control plane reads its settings from: environment variables only.

Every variable is listed with its default in the README's configuration table.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """``BERTH_VAR``: made 0700 (an existing one is tightened to 0700), as it holds the database,
    the secret key and Redis's data: no other host user lists or opens anything in it."""
    path = Path(os.environ.get("BERTH_VAR", BASE_DIR / "var"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Make ``path`` an empty file of mode 0600 from the first byte if it does not exist (the mode is
    given to ``open``: a umask can only take bits away). SQLite then opens it as it is, and gives
    its ``-wal`` and ``-shm`` files the database file's mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600))
    except (FileExistsError, FileNotFoundError):
        pass  # there already, or no directory to make it in (SQLite then says so)
    return path


def secret_key() -> str:
    """``SECRET_KEY`` from the environment, else generated once and kept under var/."""
    given = os.environ.get("SECRET_KEY")
    if given:
        return given
    path = var_dir() / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    # Write then link into place: two processes starting at once agree on one key.
    # Created 0600 from the first byte (O_EXCL, the mode given to open: no window in which another
    # user could open it; a umask can only take bits away).
    tmp = path.with_name(f".secret_key.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def broker_url() -> str:
    return os.environ.get("BERTH_BROKER_URL", "redis://127.0.0.1:6380/0")
