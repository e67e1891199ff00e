"""Plain data in and out of the container service.

``RunOptions`` is everything ``create``/``run`` accept (Docker's flags, parsed);
``ExecOptions`` what ``exec`` accepts; the answers are ``ContainerSummary`` (a
``ps`` row), ``TopResult``, ``StatsSample`` and ``inspect``'s Docker-shaped dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class RunOptions:
    image: str
    command: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None       # None: the image's; [] clears it
    name: str = ""
    env: list[str] = field(default_factory=list)            # KEY=VALUE, or KEY to copy from the caller's env
    env_files: list[str] = field(default_factory=list)
    workdir: str = ""
    user: str = ""
    hostname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    stop_timeout: int | None = None
    read_only: bool = False
    tmpfs: list[str] = field(default_factory=list)
    shm_size: str = ""
    volumes: list[str] = field(default_factory=list)        # -v
    mounts: list[str] = field(default_factory=list)         # --mount
    memory: str = ""
    memory_swap: str = ""
    cpus: str = ""
    cpu_shares: int | None = None
    pids_limit: int | None = None
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    # "" (the engine's default: ``bridge``, or BERTH_DEFAULT_NETWORK), "bridge", a user network's name,
    # "none" (own namespace with lo only), "host", "container:<name|id>", or a namespace path.
    network: str = ""
    network_aliases: list[str] = field(default_factory=list)   # --network-alias (user networks)
    ip: str = ""                                               # --ip (user networks)
    mac_address: str = ""
    publish: list[str] = field(default_factory=list)           # -p [hostIP:][hostPort:]containerPort[/proto]
    publish_all: bool = False                                  # -P: every exposed port, random host ports
    expose: list[str] = field(default_factory=list)            # --expose, added to the image's EXPOSE
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)         # --add-host name:ip
    restart: str = "no"
    auto_remove: bool = False
    init: bool = False
    tty: bool = False
    interactive: bool = False
    log_opts: dict[str, str] = field(default_factory=dict)  # max-size, max-file
    pull: str = "missing"
    # health checks (engine.containers.health): over the image's HEALTHCHECK, as Docker's flags
    health_cmd: str | None = None            # --health-cmd: run by /bin/sh -c in the container
    health_interval: str = ""                # Go durations: "30s", "1m30s"
    health_timeout: str = ""
    health_start_period: str = ""
    health_start_interval: str = ""
    health_retries: int | None = None
    no_healthcheck: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExecOptions:
    command: list[str]
    env: list[str] = field(default_factory=list)
    workdir: str = ""
    user: str = ""
    tty: bool = False
    interactive: bool = False
    detach: bool = False
    privileged: bool = False


@dataclass
class ContainerSummary:
    id: str
    name: str
    image: str
    command: str
    created: str
    state: str          # created, running, paused, restarting, exited, dead
    status: str         # "Up 3 seconds", "Exited (0) 2 seconds ago"…
    exit_code: int
    labels: dict[str, str]
    pid: int = 0
    ports: str = ""     # as ``docker ps`` shows them: "0.0.0.0:8080->80/tcp, 443/tcp"
    image_id: str = ""
    mounts: list[dict] = field(default_factory=list)    # Type, Name, Source, Destination, Driver (GET /containers/json)
    networks: list[str] = field(default_factory=list)   # the networks it is attached to, by name

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TopResult:
    titles: list[str]
    processes: list[list[str]]


@dataclass
class StatsSample:
    id: str
    name: str
    cpu_percent: float
    memory_usage: int
    memory_limit: int
    memory_percent: float
    pids: int
    block_read: int
    block_write: int
    net_rx: int = 0                                         # bytes, every interface but lo
    net_tx: int = 0
    networks: dict[str, dict] = field(default_factory=dict)  # interface → rx_bytes, rx_packets… (Docker's)
    read: str = ""                                          # when: RFC 3339, UTC
    cpu_usage_ns: int = 0                                   # the raw counters CPU % came from
    system_cpu_ns: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
