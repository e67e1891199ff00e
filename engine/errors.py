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


class CommandNotFound(EngineError):
    """The container's command does not exist in its image (``run`` exits 127, as Docker)."""


class CommandNotExecutable(EngineError):
    """The container's command exists but cannot be run: not executable, or a directory (exit 126)."""


class BuildFailed(EngineError):
    """A build step failed (a RUN exited non-zero…): the message names the step, its exit code and last output."""

    def __init__(self, message: str, *, step: int = 0, exit_code: int | None = None, output: list[str] | None = None):
        super().__init__(message)
        self.step = step
        self.exit_code = exit_code
        self.output = output or []
