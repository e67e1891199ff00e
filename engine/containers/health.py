"""Health checks: a container's check (from its image and the run flags) and the results it gave.

Words, as Docker's: a container's *check* is ``{"Test": [...], "Interval", "Timeout", "StartPeriod",
"StartInterval", "Retries"}`` (durations in nanoseconds, 0 for "the default"); ``Test`` is
``["CMD", arg...]`` (run as is), ``["CMD-SHELL", text]`` (run by ``/bin/sh -c``) or ``["NONE"]``
(no check, also when the image has one). One *probe* runs the test inside the container
(``engine.containers.healthprobe``) and gives a *result* (Start, End, ExitCode, Output); the
container's *health* is its status (``starting``, ``healthy``, ``unhealthy``), its failing
streak and the last five results.

Lifecycle of the health of one run of a container::

    start ──► starting ──pass──► healthy ──Retries failures in a row──► unhealthy
                 │  ▲              ▲                                        │
                 │  └ failures inside StartPeriod do not count             │
                 └──Retries failures after StartPeriod──► unhealthy ──pass─┘

Each start begins again at ``starting`` (the health is kept with the ``StartedAt`` of the run it
belongs to, so a new run reads as ``starting`` without anyone resetting it). The results live in
the container's record (``rec["Health"]``), written under the container's lock; a change of
status is the event ``health_status: healthy`` (or ``unhealthy``).

    check = container_check(image_config.healthcheck, run_options)     # None: no check
    health = record_result(rec, result)   # the new health; the caller saves rec and emits on change
    ps_suffix(rec)                         # " (healthy)", " (health: starting)", ""

Defaults (Docker's): interval 30s, timeout 30s, start period 0s, start interval 5s, retries 3;
a result's output is capped at 4096 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidArgument

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000          # 1ms: Docker refuses a shorter (non-zero) interval, timeout or period
MAX_OUTPUT = 4096                 # bytes of a probe's output kept, as Docker's
MAX_LOG = 5                       # results kept, as Docker's

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
NO_RUN = "0001-01-01T00:00:00Z"

# The run flags, as RunOptions names them, and the check's key each sets.
DURATION_FLAGS = {"health_interval": "Interval", "health_timeout": "Timeout", "health_start_period": "StartPeriod",
                  "health_start_interval": "StartInterval"}


@dataclass(frozen=True)
class Check:
    """A container's check with Docker's defaults filled in (durations in seconds)."""

    test: list[str]
    interval: float
    timeout: float
    start_period: float
    start_interval: float
    retries: int

    @classmethod
    def of(cls, check: dict) -> "Check":
        def seconds(key: str, default: int) -> float:
            return (check.get(key) or default) / SECOND

        return cls(test=list(check["Test"]), interval=seconds("Interval", DEFAULT_INTERVAL),
                   timeout=seconds("Timeout", DEFAULT_TIMEOUT),
                   start_period=seconds("StartPeriod", DEFAULT_START_PERIOD),
                   start_interval=seconds("StartInterval", DEFAULT_START_INTERVAL),
                   retries=check.get("Retries") or DEFAULT_RETRIES)

    def command(self) -> list[str]:
        """What runs inside the container: ``CMD`` as is, ``CMD-SHELL`` through ``/bin/sh -c``."""
        if self.test[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", self.test[1]]
        return list(self.test[1:])


# -- the check: image and flags ------------------------------------------------------------------------


def parse_duration(text: str, flag: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``, ``0``) in nanoseconds; negative ones are refused."""
    from engine.events.times import parse_duration as go_duration

    text = (text or "").strip()
    value = 0 if text in ("0", "") else go_duration(text)
    if value is None:
        raise InvalidArgument(f'invalid argument "{text}" for "--{flag}" flag: time: invalid duration "{text}"')
    if value < 0:
        raise InvalidArgument(f"--{flag} cannot be negative")
    if 0 < value < MIN_DURATION:
        raise InvalidArgument(f"--{flag} cannot be less than 1ms")
    return value


def check_options(opts) -> dict:
    """The check the run flags of ``opts`` (``RunOptions``) ask for, validated: only the keys they set,
    ``{"Test": ["NONE"]}`` for ``--no-healthcheck``. Raises InvalidArgument as Docker's CLI does."""
    out: dict = {}
    cmd = getattr(opts, "health_cmd", None)
    durations = {flag: getattr(opts, flag, "") for flag in DURATION_FLAGS}
    retries = getattr(opts, "health_retries", None)
    if getattr(opts, "no_healthcheck", False):
        if cmd or retries is not None or any(durations.values()):
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if cmd:  # as Docker's CLI: an empty --health-cmd is no --health-cmd
        if "\x00" in cmd:
            raise InvalidArgument("--health-cmd: a NUL character")
        out["Test"] = ["CMD-SHELL", cmd]
    for flag, value in durations.items():
        if value:
            out[DURATION_FLAGS[flag]] = parse_duration(value, flag.replace("_", "-"))
    if retries is not None:
        if retries < 0:
            raise InvalidArgument("--health-retries cannot be negative")
        out["Retries"] = retries
    return out


def container_check(image_check: dict | None, opts) -> dict | None:
    """The container's check: the image's, with what the flags set put over it (as Docker merges them).
    None when there is no test to run (no check anywhere, or ``NONE``)."""
    merged = {**(image_check or {}), **check_options(opts)}
    test = merged.get("Test") or []
    if not test or test[0] == "NONE":
        return {"Test": ["NONE"]} if test else None
    return {"Test": list(test), **{k: merged[k] for k in ("Interval", "Timeout", "StartPeriod", "StartInterval",
                                                         "Retries") if merged.get(k)}}


def active(rec: dict) -> Check | None:
    """The container's check, or None when it has none (or ``NONE``)."""
    check = rec.get("Healthcheck")
    if not check or not check.get("Test") or check["Test"][0] == "NONE":
        return None
    return Check.of(check)


# -- results -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    start: str          # RFC 3339 with nanoseconds, UTC
    end: str
    exit_code: int      # 0 passed; anything else failed; -1: it could not run or it timed out
    output: str         # at most MAX_OUTPUT bytes of stdout and stderr together

    def to_docker(self) -> dict:
        return {"Start": self.start, "End": self.end, "ExitCode": self.exit_code, "Output": self.output}


def current(rec: dict) -> dict | None:
    """The health of the container's current (or last) run, Docker's ``State.Health``; None without a check."""
    if active(rec) is None:
        return None
    stored = rec.get("Health") or {}
    log = list(stored.get("Log") or [])
    if stored.get("Run") != rec["State"].get("StartedAt"):
        return {"Status": STARTING, "FailingStreak": 0, "Log": log}
    return {"Status": stored.get("Status", STARTING), "FailingStreak": stored.get("FailingStreak", 0), "Log": log}


def _seconds_since(start_iso: str, then_iso: str) -> float:
    import datetime

    def parse(text: str) -> float:
        text = text.replace("Z", "+00:00")
        if "." in text:  # Python's fromisoformat takes at most microseconds
            head, _, tail = text.partition(".")
            digits = "".join(c for c in tail if c.isdigit())
            text = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits):]}"
        return datetime.datetime.fromisoformat(text).timestamp()

    try:
        return parse(then_iso) - parse(start_iso)
    except ValueError:
        return float("inf")


def record_result(rec: dict, result: Result) -> dict:
    """Put ``result`` into ``rec["Health"]`` (the caller holds the container's lock and saves ``rec``);
    return the new ``State.Health``. The rules are Docker's: a pass makes it healthy and the streak 0;
    a failure counts unless it came within the start period while the container was still starting;
    ``Retries`` counted failures make it unhealthy."""
    check = active(rec)
    health = current(rec) or {"Status": STARTING, "FailingStreak": 0, "Log": []}
    if result.exit_code == 0:
        health["Status"] = HEALTHY
        health["FailingStreak"] = 0
    else:
        counts = True
        if health["Status"] == STARTING and check is not None:
            counts = _seconds_since(rec["State"]["StartedAt"], result.start) >= check.start_period
        if counts:
            health["FailingStreak"] += 1
            if check is not None and health["FailingStreak"] >= check.retries:
                health["Status"] = UNHEALTHY
    health["Log"] = [*health["Log"], result.to_docker()][-MAX_LOG:]
    rec["Health"] = {**health, "Run": rec["State"].get("StartedAt")}
    return health


def interval(rec: dict, check: Check, now_iso: str) -> float:
    """Seconds from the end of one probe (or the start) to the next, as Docker's monitor: the start
    interval while the container is starting inside its start period, the interval otherwise."""
    health = current(rec) or {}
    if health.get("Status") == STARTING and _seconds_since(rec["State"]["StartedAt"], now_iso) < check.start_period:
        return check.start_interval
    return check.interval


# -- how it shows -------------------------------------------------------------------------------------------


def ps_suffix(rec: dict) -> str:
    """What ``ps`` adds to a running container's "Up 3 minutes": ``(healthy)``, ``(health: starting)``…"""
    health = current(rec)
    if health is None:
        return ""
    status = health["Status"]
    return f" (health: {status})" if status == STARTING else f" ({status})"


def filter_value(rec: dict, value: str) -> bool:
    """``ps --filter health=…``: ``starting``, ``healthy``, ``unhealthy`` or ``none`` (no check), as Docker's."""
    if value not in (STARTING, HEALTHY, UNHEALTHY, "none"):
        raise InvalidArgument(f"Unrecognised filter value for health: {value}")  # Docker's words
    now = current(rec)
    return (now is None) if value == "none" else (now is not None and now["Status"] == value)


def inspect_fields(rec: dict, doc: dict) -> dict:
    """Add ``State.Health`` and ``Config.Healthcheck`` to ``doc`` (inspect's Docker shape), as Docker's."""
    health = current(rec)
    if health is not None:
        doc.setdefault("State", {})["Health"] = health
    if rec.get("Healthcheck"):
        doc.setdefault("Config", {})["Healthcheck"] = dict(rec["Healthcheck"])
    return doc


def go_duration(seconds: float) -> str:
    """A duration as Go prints one: ``1s``, ``500ms``, ``1m30s``."""
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:g}s"
    if minutes or hours:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return text
