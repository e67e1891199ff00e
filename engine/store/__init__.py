"""The content store: blobs by digest and the image records that use them.

``BlobStore`` keeps bytes under their digest; ``MetadataStore`` (SQLite) keeps which
images, tags and layers exist and which blobs each one uses. A blob is kept while
any image uses it (its reference count is the number of images that list it).
"""

from engine.store.blobs import BlobStore, BlobWriter, digest_of
from engine.store.metadata import MetadataStore

__all__ = ["BlobStore", "BlobWriter", "MetadataStore", "digest_of"]
