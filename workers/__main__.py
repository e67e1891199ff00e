"""``python -m workers``: start this host's worker on its own queue.

Reads BERTH_HOST_NAME, BERTH_BROKER_URL, BERTH_ROOT… (see workers.config).
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    from workers.config import WorkerConfig

    config = WorkerConfig.from_env()
    os.environ.setdefault("BERTH_HOST_NAME", config.host_name)
    from workers.app import app

    argv = [
        "worker",
        "--queues", config.queue,
        "--hostname", f"{config.host_name}@berth",
        "--pool", "threads",
        "--concurrency", str(config.concurrency),
        "--without-gossip",
        "--without-mingle",
        "--loglevel", os.environ.get("BERTH_LOG_LEVEL", "INFO"),
    ]
    app.worker_main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
