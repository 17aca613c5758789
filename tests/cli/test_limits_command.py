"""``synthstack limits set|list|clear``: tenants' rate-limit overrides in the database, what the
pipeline reads; bad arguments are one-line errors."""

from __future__ import annotations

import pytest

from synthstack_core.cli import main


@pytest.fixture
def env(module_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", module_database_url)
    monkeypatch.setenv("SYNTHSTACK_RATE_LIMITS", "default=600/minute;generation=60/minute")
    return module_database_url


def test_set_list_clear(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["limits", "set", "--tenant", "acme", "generation", "120 per minute"]) == 0
    assert main(["limits", "set", "--tenant", "acme", "default", "Unlimited"]) == 0
    assert main(["limits", "set", "--tenant", "acme", "generation", "100/minute"]) == 0  # replaces
    assert main(["limits", "set", "--tenant", "other", "rag", "5/second"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "tenant acme: generation = 120 per minute",
        "tenant acme: default = unlimited",
        "tenant acme: generation = 100/minute",
        "tenant other: rag = 5/second",
    ]
    assert main(["limits", "list"]) == 0
    listed = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
    assert listed == [
        ["(SYNTHSTACK_RATE_LIMITS)", "default", "600"],
        ["(SYNTHSTACK_RATE_LIMITS)", "generation", "60"],
        ["acme", "default", "unlimited"],
        ["acme", "generation", "100/minute"],
        ["other", "rag", "5/second"],
    ]
    assert main(["limits", "list", "--tenant", "other"]) == 0
    assert [line.split()[:3] for line in capsys.readouterr().out.splitlines()] == [
        ["other", "rag", "5/second"]
    ]
    assert main(["limits", "clear", "--tenant", "acme", "generation"]) == 0
    assert main(["limits", "clear", "--tenant", "other"]) == 0
    assert main(["limits", "clear", "--tenant", "acme"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "tenant acme: 1 override cleared",
        "tenant other: 1 override cleared",
        "tenant acme: 1 override cleared",
    ]
    assert main(["limits", "list", "--tenant", "acme"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["set", "--tenant", "acme", "generation", "lots"], "error: Invalid rate: 'lots' is not"),
        (["set", "--tenant", "acme", "health", "1/second"], "error: Invalid policy:"),
        (["set", "--tenant", "bad tenant", "rag", "1/second"], "error: A tenant name is"),
        (["clear", "--tenant", "nobody", "rag"], "error: Tenant 'nobody' has no rate-limit"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    env: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["limits", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message), captured.err
    assert captured.err.count("\n") == 1
