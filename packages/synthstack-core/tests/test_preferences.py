"""The ``Prefer`` header (RFC 7240) as handlers receive it."""

from __future__ import annotations

import time

import pytest

from synthstack_core.preferences import RESPOND_ASYNC, preferences


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("respond-async", {"respond-async": ""}),
        ("Respond-Async", {"respond-async": ""}),
        ("respond-async, wait=10", {"respond-async": "", "wait": "10"}),
        ("wait=10; foo=bar, respond-async", {"wait": "10", "respond-async": ""}),
        ('return="minimal" ; x=";,", respond-async', {"return": "minimal", "respond-async": ""}),
        ("return=minimal,return=representation", {"return": "minimal"}),
        ("  respond-async  ,", {"respond-async": ""}),
        ("@@@, respond-async", {"respond-async": ""}),
        ('handling="a \\"quoted\\" value"', {"handling": 'a "quoted" value'}),
        ("respond-asynchronously", {"respond-asynchronously": ""}),
        ("respond-async foo, wait=5", {"wait": "5"}),
        ('wait="5, respond-async', {}),
    ],
)
def test_preferences_are_read_as_rfc_7240_says(header: str, expected: dict[str, str]) -> None:
    assert dict(preferences(header)) == expected


def test_only_the_exact_token_asks_for_a_job() -> None:
    assert RESPOND_ASYNC in preferences("return=minimal, RESPOND-ASYNC")
    assert RESPOND_ASYNC not in preferences("respond-asynchronously, respond_async")


@pytest.mark.parametrize(
    "header",
    ["a;" * 30_000 + '"', 'a=",' * 16_000, '",' * 30_000, 'a="x\\" ,' * 8_000],
)
def test_a_pathological_header_is_read_in_linear_time(header: str) -> None:
    """Quotes and commas by the thousand (a 64 KiB head passes uvicorn): one pass, no
    backtracking blow-up (a regular expression over the whole header took seconds)."""
    started = time.perf_counter()
    preferences(header)
    assert time.perf_counter() - started < 1.0
