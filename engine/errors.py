"""The engine's errors: each carries a message a user can act on.

The web side turns these into HTTP answers in one place; a job that ends in one
of them is *failed* with its message, anything else is *errored*.
"""


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class NotFound(EngineError):
    """The named thing (image, container, network, volume…) does not exist."""


class Conflict(EngineError):
    """The request clashes with the current state (name in use, image in use…)."""


class InvalidArgument(EngineError):
    """The request itself is malformed (bad reference, bad limit, bad path…)."""


class Unsupported(EngineError):
    """The request is understood but Berth does not do it (schema 1 manifests…)."""


class Unauthorized(EngineError):
    """A registry or another party refused our credentials."""


class RuntimeUnavailable(EngineError):
    """No working OCI runtime (runc or crun) was found on this host."""


class DigestMismatch(EngineError):
    """Content does not match the digest or size that named it: nothing of it is kept."""


class UnsafeContent(EngineError):
    """An image or layer tries something that could harm the host (escape, bomb…): refused."""


class RegistryError(EngineError):
    """A registry answered with an error or could not be reached."""
