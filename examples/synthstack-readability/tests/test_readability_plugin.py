"""The package is a SynthStack plugin: found through its entry point, with its own settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from synthstack_core import PayloadTooLarge, Settings, SynthStack
from synthstack_core.modules import BUILTIN_MODULES, installed_modules
from synthstack_core.operations import operations_for
from synthstack_core.plugins import load_plugins
from synthstack_readability import (
    MODULE,
    ReadabilityRequest,
    ReadabilityService,
    ReadabilitySettings,
)


def test_the_installed_package_declares_the_module() -> None:
    (plugin,) = [p for p in load_plugins() if p.name == "readability"]
    assert plugin.modules == (MODULE,)
    assert plugin.value == "synthstack_readability:MODULE"
    assert plugin.distribution.startswith("synthstack-readability ")


def test_the_stack_serves_it_after_the_builtin_modules() -> None:
    modules = installed_modules(Settings(SYNTHSTACK_PLUGINS="readability"))
    assert modules == (*BUILTIN_MODULES, MODULE)
    (op,) = [op for op in operations_for(modules) if op.module == "readability"]
    assert (op.operation_id, op.method, op.path, op.status) == (
        "readability-score",
        "POST",
        "/api/v1/readability",
        200,
    )
    assert op.authenticated and op.tags == ("readability",)
    assert installed_modules(Settings(SYNTHSTACK_PLUGINS="")) == BUILTIN_MODULES


def test_its_settings_have_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ReadabilitySettings().max_chars == 100_000
    monkeypatch.setenv("SYNTHSTACK_READABILITY_MAX_CHARS", "12")
    assert ReadabilitySettings().max_chars == 12
    monkeypatch.setenv("SYNTHSTACK_READABILITY_MAX_CHARS", "0")
    with pytest.raises(ValueError, match="max_chars"):
        ReadabilitySettings()


def test_a_text_over_the_limit_is_too_large() -> None:
    service = ReadabilityService(ReadabilitySettings(max_chars=12))
    assert service.score(ReadabilityRequest(text="Twelve chars")).words == 2
    with pytest.raises(PayloadTooLarge) as raised:
        service.score(ReadabilityRequest(text="Thirteen char"))
    assert raised.value.instance_code == "text_too_long"


@pytest.mark.parametrize("text", ["", " ", "\n\t "])
def test_an_empty_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="text"):
        ReadabilityRequest.model_validate({"text": text}, strict=True)


async def test_an_invalid_setting_fails_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHSTACK_READABILITY_MAX_CHARS", "0")
    # Before anything starts: the database named here is never reached.
    stack = SynthStack(
        Settings(SYNTHSTACK_PLUGINS="readability", DATABASE_URL="postgresql://nobody@/nowhere")
    )
    with pytest.raises(ValidationError, match="ReadabilitySettings"):
        await stack.start()
