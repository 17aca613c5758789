"""The ``Prefer`` request header (RFC 7240), read the same way for every operation.

A handler that takes a ``prefer`` argument gets :func:`preferences` of the request's header: each
preference's name (lower-case: names are case-insensitive) and its value (``""`` when it has
none); parameters after ``;`` are not kept. A preference named twice counts once, the first time
(RFC 7240, section 2). Anything a handler does not know it ignores, as the RFC says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["RESPOND_ASYNC", "Preferences", "preferences"]

#: ``Prefer: respond-async``: the client would rather have a 202 and the job than wait.
RESPOND_ASYNC = "respond-async"

#: A request's preferences: name (lower-case) → value (``""`` for none).
Preferences = Mapping[str, str]

# token [BWS "=" BWS (token / quoted-string)], then "; parameter" pieces up to the next comma.
_PREFERENCE = re.compile(
    r"""\s*(?P<name>[!#$%&'*+.^_`|~0-9A-Za-z-]+)
        (?:\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[!#$%&'*+.^_`|~0-9A-Za-z-]*)))?
        (?P<params>(?:\s*;(?:[^,"]|"(?:[^"\\]|\\.)*")*)*)\s*(?:,|$)""",
    re.VERBOSE,
)


def preferences(header: str) -> Preferences:
    """The preferences of a ``Prefer`` header's value (several headers joined by commas); a piece
    that is not a preference is skipped."""
    found: dict[str, str] = {}
    position = 0
    while position < len(header):
        match = _PREFERENCE.match(header, position)
        if match is None or match.end() == position:
            # Not a preference: skip to the next comma.
            comma = header.find(",", position)
            if comma < 0:
                break
            position = comma + 1
            continue
        position = match.end()
        name = match["name"].lower()
        value = match["quoted"] if match["quoted"] is not None else match["token"] or ""
        found.setdefault(name, re.sub(r"\\(.)", r"\1", value))
    return found
