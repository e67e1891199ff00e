"""Names and ids, checked against their exact form before they become part of a path, a lock file or a key.

Every id the engine puts into a file name comes from outside at some point (an
image config's diff ids, a manifest's digests, an archive's names, a command line,
a job): ``../../x`` is not a container id. Each function returns its value when it
has the exact form, and raises ``InvalidArgument`` naming what was refused
otherwise. Lookups that take "an id, a prefix or a name" (``docker rm x``) check
with ``is_*`` first and simply do not find anything else.

    ids.digest("sha256:" + "a" * 64)      # returned as it is
    ids.container_id("../../etc")         # InvalidArgument: invalid container id '../../etc'
"""

from __future__ import annotations

import re

from engine.errors import InvalidArgument

_DIGEST = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_CONTAINER_ID = re.compile(r"^[a-f0-9]{64}$")
_HEX_PREFIX = re.compile(r"^[a-f0-9]{1,64}$")
# Docker's restrictedNameChars: [a-zA-Z0-9][a-zA-Z0-9_.-]
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_VOLUME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
NAME_MAX = 255


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def digest(value, what: str = "digest") -> str:
    """``sha256:<64 hex>`` or ``sha512:<128 hex>``, lowercase, nothing else."""
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise InvalidArgument(f"invalid {what} {_show(value)}: want sha256: and 64 lowercase hex digits")
    return value


def diff_id(value) -> str:
    return digest(value, "diff id")


def container_id(value) -> str:
    if not is_container_id(value):
        raise InvalidArgument(f"invalid container id {_show(value)}: want 64 lowercase hex digits")
    return value


def is_container_id(value) -> bool:
    return isinstance(value, str) and bool(_CONTAINER_ID.fullmatch(value))


def is_hex_prefix(value) -> bool:
    return isinstance(value, str) and bool(_HEX_PREFIX.fullmatch(value))


def _name(value, what: str, pattern: re.Pattern, rule: str) -> str:
    if not isinstance(value, str) or len(value) > NAME_MAX or not pattern.fullmatch(value):
        raise InvalidArgument(f"invalid {what} {_show(value)}: {rule}")
    return value


def container_name(value) -> str:
    """A container name as Docker allows it (a leading ``/`` is Docker's way of showing it, and dropped)."""
    if isinstance(value, str) and value.startswith("/"):
        value = value[1:]
    return _name(value, "container name", _NAME, "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def is_container_name(value) -> bool:
    try:
        container_name(value)
        return True
    except InvalidArgument:
        return False


def network_name(value) -> str:
    return _name(value, "network name", _NAME, "use letters, digits, '_', '.' and '-', starting with a letter "
                                               "or digit")


def volume_name(value) -> str:
    return _name(value, "volume name", _VOLUME, "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two "
                                              "characters")


def tag(value) -> str:
    if not isinstance(value, str) or not _TAG.fullmatch(value):
        raise InvalidArgument(f"invalid tag {_show(value)}: up to 128 letters, digits, '_', '.', '-', not starting "
                              "with '.' or '-'")
    return value
