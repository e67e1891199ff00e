"""Where the control plane reads its settings from: environment variables only.

Every variable is listed with its default in the README's configuration table.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    path = Path(os.environ.get("BERTH_VAR", BASE_DIR / "var"))
    path.mkdir(parents=True, exist_ok=True)
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
