"""Tasks a host runs. Names are written out: ``host.<area>.<verb>``."""

from __future__ import annotations

from engine.host import facts
from workers.app import app, config


@app.task(name="host.facts")
def host_facts() -> dict:
    """Answer this host's facts (used by the control plane to refresh a host)."""
    return facts(config.host_name).to_dict()
