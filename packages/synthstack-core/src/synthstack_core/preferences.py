"""The ``Prefer`` request header (RFC 7240), read the same way for every operation.

A handler that takes a ``prefer`` argument gets :func:`preferences` of the request's header: each
preference's name (lower-case: names are case-insensitive) and its value (``""`` when it has
none); parameters after ``;`` are not kept. A preference named twice counts once, the first time
(RFC 7240, section 2). Anything a handler does not know it ignores, as the RFC says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["NO_PREFERENCES", "RESPOND_ASYNC", "Preferences", "preferences"]

#: ``Prefer: respond-async``: the client would rather have a 202 and the job than wait.
RESPOND_ASYNC = "respond-async"

#: A request's preferences: name (lower-case) → value (``""`` for none).
Preferences = Mapping[str, str]
#: No preference (a handler's default when called as a library, without a request).
NO_PREFERENCES: Preferences = MappingProxyType({})

_NAME_CHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# One preference: token [BWS "=" BWS (token / quoted-string)], then its parameters (";..."), which
# are not kept.
_PREFERENCE = re.compile(
    rf"""\s*(?P<name>{_NAME_CHARS})
        (?:\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>{_NAME_CHARS})?))?
        \s*(?:;.*)?""",
    re.VERBOSE | re.DOTALL,
)


def preferences(header: str) -> Preferences:
    """The preferences of a ``Prefer`` header's value (several headers joined by commas); a piece
    that is not a preference is skipped."""
    found: dict[str, str] = {}
    for element in _elements(header):
        match = _PREFERENCE.fullmatch(element)
        if match is None:
            continue
        value = match["quoted"] if match["quoted"] is not None else match["token"] or ""
        found.setdefault(match["name"].lower(), re.sub(r"\\(.)", r"\1", value))
    return found


def _elements(header: str) -> list[str]:
    """``header`` split at its commas outside quoted strings, in one pass (an unclosed quote runs
    to the end)."""
    elements: list[str] = []
    start = 0
    quoted = escaped = False
    for position, character in enumerate(header):
        if quoted:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                quoted = False
        elif character == '"':
            quoted = True
        elif character == ",":
            elements.append(header[start:position])
            start = position + 1
    elements.append(header[start:])
    return elements
