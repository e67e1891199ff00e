"""Who uses an image: the hook the container code fills in.

The image code cannot know about containers (they come later and live in their
own store). A container store registers a *finder*: given an image id and the
engine root asking, it returns descriptions of the containers of that root that
use it (``["web-1 (running)"]``). ``rmi``
refuses to delete such an image unless forced, and then only untags it, so the
layers under a container never vanish; ``image prune`` skips it.

    from engine.images import usage
    usage.register_finder(lambda image_id, root: [c.name for c in containers_of(root) if c.image_id == image_id])
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

Finder = Callable[[str, Path], list[str]]
_finders: list[Finder] = []


def register_finder(finder: Finder) -> None:
    if finder not in _finders:
        _finders.append(finder)


def unregister_finder(finder: Finder) -> None:
    if finder in _finders:
        _finders.remove(finder)


def users_of(image_id: str, root: Path) -> list[str]:
    users: list[str] = []
    for finder in list(_finders):
        users.extend(finder(image_id, root))
    return users


# -- what else keeps layers -------------------------------------------------------------
#
# The build cache holds layers that no image may name (stages a target did not keep,
# images removed since): a *keeper* tells the garbage collector which layers (diff ids)
# and blobs (digests) of an engine root it still needs. ``builder prune`` forgets the
# cache first and then collects, so that is where that space comes back.

Keeper = Callable[[Path], tuple[set[str], set[str]]]
_keepers: list[Keeper] = []


def register_keeper(keeper: Keeper) -> None:
    if keeper not in _keepers:
        _keepers.append(keeper)


def kept(root: Path) -> tuple[set[str], set[str]]:
    """(diff ids, blob digests) that registered keepers still need in this root."""
    layers: set[str] = set()
    blobs: set[str] = set()
    for keeper in list(_keepers):
        more_layers, more_blobs = keeper(root)
        layers |= more_layers
        blobs |= more_blobs
    return layers, blobs
