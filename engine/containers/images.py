"""Where a container's image comes from: a small interface, and two implementations.

Words: an ``ImageSource`` ``resolve``s a reference into the image's run config
(``ImageConfig``: Env, Cmd, Entrypoint, WorkingDir, User, Labels, StopSignal,
Volumes) and its layer directories, lowest first, ready for an overlay mount. It
pulls a missing image when the pull policy says so.

- ``EngineImageSource`` asks the images part of the engine (``engine.api.Engine``).
- ``DirectoryImageSource`` reads images laid out by hand under a directory — each
  image ``<dir>/<name>/config.json`` (an OCI image config) plus ``layers/0``,
  ``layers/1``… — which the tests build and a host without a registry can use.
- ``ChainImageSource`` tries several in order.

    >>> source = DirectoryImageSource(Path("/srv/images"))   # doctest: +SKIP
    >>> image = source.resolve("busybox-test")               # doctest: +SKIP
    >>> image.layers[0], image.config.cmd                    # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.errors import InvalidArgument, NotFound
from engine.images import runconfig


@dataclass
class ImageConfig:
    env: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    volumes: list[str] = field(default_factory=list)
    exposed_ports: list[str] = field(default_factory=list)   # EXPOSE: "80/tcp"; what -P publishes
    healthcheck: dict | None = None                          # HEALTHCHECK: Docker's Healthcheck (ns durations)

    @classmethod
    def from_oci(cls, c: dict | None, what: str = "image") -> "ImageConfig":
        """The run config of an image config's ``config`` object, validated again (``engine.images.runconfig``):
        a field stored before the checks existed, or laid out by hand, is refused here naming it."""
        c = runconfig.normalise(c, what)
        return cls(env=list(c.get("Env") or []), cmd=list(c.get("Cmd") or []),
                   entrypoint=list(c.get("Entrypoint") or []), working_dir=c.get("WorkingDir") or "",
                   user=c.get("User") or "", labels=dict(c.get("Labels") or {}),
                   stop_signal=c.get("StopSignal") or "", volumes=sorted((c.get("Volumes") or {}).keys()),
                   exposed_ports=sorted((c.get("ExposedPorts") or {}).keys()),
                   healthcheck=c.get("Healthcheck") or None)


@dataclass
class ResolvedImage:
    id: str
    reference: str
    config: ImageConfig
    layers: list[Path]     # lowest first


class ImageSource(Protocol):
    def resolve(self, reference: str, pull: str = "missing") -> ResolvedImage:
        """``pull`` is ``missing`` (pull if absent), ``always`` or ``never``; NotFound if not there."""


def check_pull_policy(pull: str) -> str:
    if pull not in ("missing", "always", "never"):
        raise InvalidArgument(f"invalid --pull {pull!r}: use always, missing or never")
    return pull


class DirectoryImageSource:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def resolve(self, reference: str, pull: str = "missing") -> ResolvedImage:
        check_pull_policy(pull)
        name = reference.removesuffix(":latest")
        d = self.directory / name
        if "/" in name or name.startswith(".") or not (d / "config.json").is_file():
            raise NotFound(f"Unable to find image '{reference}' locally")
        config = json.loads((d / "config.json").read_text())
        layers = sorted((p for p in (d / "layers").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        return ResolvedImage(id=config.get("id") or "sha256:" + name, reference=reference,
                             config=ImageConfig.from_oci(config.get("config"), f"image {reference}"), layers=layers)


class EngineImageSource:
    """Images from the engine's store, pulled when missing (``--pull missing``), always
    (``always``) or never. ``progress`` gets the pull's progress, ``say`` its messages
    (the command line shows both on stderr, as Docker's ``run`` does)."""

    def __init__(self, root: Path | None = None, engine=None, progress=None, say=None):
        self._engine = engine
        self.root = root
        self.progress = progress
        self.say = say or (lambda text: None)

    @property
    def engine(self):
        if self._engine is None:
            from engine.api import Engine

            self._engine = Engine(root=self.root)
        return self._engine

    def _pull(self, reference: str) -> None:
        result = self.engine.pull(reference, progress=self.progress)
        self.say(f"Status: {'Downloaded newer image' if result.downloaded else 'Image is up to date'} "
                 f"for {reference}")

    def resolve(self, reference: str, pull: str = "missing") -> ResolvedImage:
        check_pull_policy(pull)
        if pull == "always":
            self._pull(reference)
        try:
            info = self.engine.inspect_image(reference)
        except NotFound:
            if pull == "never":
                raise NotFound(f"Unable to find image '{reference}' locally (--pull never)") from None
            self.say(f"Unable to find image '{reference}' locally")
            self._pull(reference)
            info = self.engine.inspect_image(reference)
        return ResolvedImage(id=info["Id"], reference=reference, config=ImageConfig.from_oci(info.get("Config"), f"image {reference}"),
                             layers=list(self.engine.layer_stack(info["Id"])))


class ChainImageSource:
    def __init__(self, *sources: ImageSource):
        self.sources = sources

    def resolve(self, reference: str, pull: str = "missing") -> ResolvedImage:
        last: Exception | None = None
        for i, source in enumerate(self.sources):
            try:
                # Only the last source may pull: earlier ones are local lookups.
                return source.resolve(reference, pull if i == len(self.sources) - 1 else "never")
            except NotFound as exc:
                last = exc
        raise last or NotFound(f"Unable to find image '{reference}'")
