"""The readability module: its settings, its models, its service and the :data:`MODULE` that
SynthStack loads from this package's ``synthstack.modules`` entry point."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import yaml
from pydantic import ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from synthstack_core import Module, PayloadTooLarge, operation
from synthstack_core.registry import Stack
from synthstack_core.schemas.common import RequestModel, ResponseModel
from synthstack_readability.scoring import score, syllable_dictionary

__all__ = [
    "MODULE",
    "ReadabilityRequest",
    "ReadabilityResponse",
    "ReadabilityService",
    "ReadabilitySettings",
]


class ReadabilitySettings(BaseSettings):
    """The module's settings, read from ``SYNTHSTACK_READABILITY_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="SYNTHSTACK_READABILITY_", extra="ignore")

    #: ``SYNTHSTACK_READABILITY_MAX_CHARS``: the longest text scored (413 above).
    max_chars: int = Field(100_000, ge=1, le=1_000_000)


class ReadabilityRequest(RequestModel):
    """A text to score."""

    # Python's regular expressions, as the schema's generators use: `\S` means the same to both.
    model_config = ConfigDict(regex_engine="python-re")

    text: str = Field(min_length=1, pattern=r"\S")


class ReadabilityResponse(ResponseModel):
    """A text's counts and readability scores."""

    sentences: int = Field(ge=0)
    words: int = Field(ge=0)
    syllables: int = Field(ge=0)
    syllables_estimated: int = Field(ge=0)
    flesch_reading_ease: float | None
    flesch_kincaid_grade: float | None


class ReadabilityService:
    """Scores texts of at most ``settings.max_chars`` characters."""

    def __init__(self, settings: ReadabilitySettings) -> None:
        self.settings = settings
        syllable_dictionary()  # read the dictionary now, not during the first request

    @operation("readability-score")
    def score(self, body: ReadabilityRequest) -> ReadabilityResponse:
        """``POST /api/v1/readability``."""
        if len(body.text) > self.settings.max_chars:
            raise PayloadTooLarge(
                f"The text has {len(body.text):,} characters; at most "
                f"{self.settings.max_chars:,} are scored (SYNTHSTACK_READABILITY_MAX_CHARS).",
                code="text_too_long",
            )
        result = score(body.text)
        return ReadabilityResponse(
            sentences=result.sentences,
            words=result.words,
            syllables=result.syllables,
            syllables_estimated=result.syllables_estimated,
            flesch_reading_ease=result.flesch_reading_ease,
            flesch_kincaid_grade=result.flesch_kincaid_grade,
        )


def _build(stack: Stack) -> ReadabilityService:
    return ReadabilityService(stack.module_settings(ReadabilitySettings))


CONTRACT: dict[str, Any] = yaml.safe_load(
    files("synthstack_readability").joinpath("openapi.yaml").read_text(encoding="utf-8")
)

MODULE = Module(
    name="readability",
    service=ReadabilityService,
    build=_build,
    contract=CONTRACT,
    settings=ReadabilitySettings,
)
