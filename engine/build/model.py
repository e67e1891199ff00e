"""Plain data in and out of a build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO


@dataclass
class BuildOptions:
    context: Path | None = None            # a directory, or None with context_tar
    context_tar: BinaryIO | None = None    # a tar stream (``-`` on the command line)
    dockerfile: str | None = None          # path; default "Dockerfile" in the context
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "default"               # default | bridge | none (see README-build.md)
    platform: str | None = None
    memory: str | int | None = None        # each RUN step's memory limit: bytes, or "512m" (--memory)
    memory_swap: str | int | None = None   # memory + swap, "-1" unlimited (--memory-swap)
    pids_limit: int | None = None          # processes per RUN step; None: the default (4096), -1: none


@dataclass
class BuildLine:
    """One line of build output: ``Step 3/9 : RUN make``, a command's output, `` ---> Using cache``…"""

    text: str
    step: int = 0
    total: int = 0


@dataclass
class BuildResult:
    image_id: str
    tags: list[str]
    steps: int = 0
    cached: int = 0               # steps answered from the cache
    containers: int = 0           # RUN steps that ran a container
    warnings: list[str] = field(default_factory=list)
