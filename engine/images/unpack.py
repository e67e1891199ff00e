"""Unpack one layer's tar into its own directory, ready for overlayfs, without ever leaving it.

Rules (Docker's, made strict), on top of the engine's safe extraction
(``engine.fs.extract``, which resolves every name inside the layer directory with
``engine.fs.resolve``):
- a name that climbs out with ``..`` is refused, and the whole layer with it;
- an absolute name is taken relative to the layer root;
- parent directories are resolved inside the layer root: a symlink on the way
  (``link -> /etc``) leads to ``<layer>/etc``, never to the host's ``/etc``;
- the last component is never followed: an existing symlink there is replaced;
- a hardlink whose target climbs out is refused; its target is looked up inside;
- directory modes, owners and times are set at the end on the directory each
  entry made, never by a name a later entry may have turned into a link;
- whiteouts become overlay whiteouts (see ``whiteout.py``); malformed ones are refused;
- more than ``max_entries`` entries or ``max_bytes`` of file data (a sparse file
  counts its full size) is refused; the decompressed stream is capped too
  (``compression.py``);
- xattrs in the ``trusted.overlay.``/``user.overlay.`` namespaces are never taken
  from a layer: only the unpacker writes those.

Every refusal names the layer (``what``) and the entry.

    stats = unpack(diff_reader, Path(tmp), what="image busybox, layer sha256:…", max_entries=1_000_000,
                   max_bytes=32 << 30)
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from engine.fs.extract import ExtractStats, Extractor, open_tar
from engine.fs.resolve import Root
from engine.images import whiteout

UnpackStats = ExtractStats


class LayerUnpacker(Extractor):
    noun = "layer"
    bytes_setting = "max_layer_bytes"
    entries_setting = "max_layer_entries"

    def special(self, rel: str, base: str, m: tarfile.TarInfo) -> bool:
        wh = whiteout.kind(base, f"{self.what}, entry {m.name!r}")
        if not wh:
            return False
        kind, name = wh
        if kind == "ignore":
            return True
        pfd = self.parent(rel, m.name)
        if kind == "opaque":
            whiteout.make_opaque(pfd)
        else:
            self.clear(pfd, name)
            whiteout.make_whiteout(pfd, name)
        return True

    def keep_xattr(self, name: str) -> bool:
        return not name.startswith(("trusted.overlay.", "user.overlay."))


def unpack(diff, dest: Path, *, what: str, max_entries: int, max_bytes: int = 1 << 62) -> UnpackStats:
    """Unpack the tar stream ``diff`` (has ``read``) into the existing empty directory ``dest``."""
    with Root(dest, what=what) as root, open_tar(diff, what, mode="r|") as tar:
        return LayerUnpacker(root, what, max_entries=max_entries, max_bytes=max_bytes).extract(tar)


__all__ = ["LayerUnpacker", "UnpackStats", "unpack"]
