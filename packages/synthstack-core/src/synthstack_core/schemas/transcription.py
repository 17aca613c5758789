"""Models of ``/api/v1/transcription/*``.

``POST /transcribe`` is a ``multipart/form-data`` upload (:class:`TranscriptionForm`): its text
fields arrive as strings, so :class:`TranscriptionParameters` converts them itself (``"0.5"`` is a
temperature, ``""`` is an unset optional field) and validates the same whether it is run strictly
(the library API) or not (a form). A form has no null: an optional field is left out
(``SkipJsonSchema`` keeps ``null`` out of the schema).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from synthstack_core.languages import ISO_639_1
from synthstack_core.multipart import UploadedFile
from synthstack_core.schemas.common import FormModel, ModelName, RequestModel, ResponseModel

__all__ = [
    "RESPONSE_FORMATS",
    "AudioCodec",
    "AudioContainer",
    "AudioFormatList",
    "AudioLimits",
    "CostEstimateRequest",
    "CostEstimateResponse",
    "LanguageCode",
    "ResponseFormat",
    "SupportedLanguage",
    "TimestampGranularity",
    "TranscriptionForm",
    "TranscriptionLanguageList",
    "TranscriptionModelLanguages",
    "TranscriptionOutput",
    "TranscriptionParameters",
    "TranscriptionResponse",
    "TranscriptionSegment",
    "TranscriptionWord",
    "VerboseTranscriptionResponse",
]

ResponseFormat = Literal["json", "verbose_json", "text", "srt", "vtt"]
TimestampGranularity = Literal["segment", "word"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "verbose_json", "text", "srt", "vtt")

#: The longest prompt accepted (Whisper only looks at its last ~224 tokens anyway).
MAX_PROMPT_CHARS = 2000

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def _blank_is_unset(value: object) -> object:
    # An HTML form sends an empty string for an input left empty.
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _form_number(value: object) -> object:
    value = _blank_is_unset(value)
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL.fullmatch(text):  # no "nan", "inf", "1e3" or "0x1"
            raise PydanticCustomError("float_parsing", "Input should be a decimal number")
        return float(text)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _known_language(value: str) -> str:
    code = value.strip().lower()
    if code not in ISO_639_1:
        raise PydanticCustomError(
            "language_code", "Input should be an ISO 639-1 language code, such as `en` or `fr`"
        )
    return code


def _one_or_many(value: object) -> object:
    if isinstance(value, str):
        return [] if not value.strip() else [value.strip()]
    if isinstance(value, list | tuple):
        return [item.strip() if isinstance(item, str) else item for item in value if item != ""]
    return value


def _format_or_default(value: object) -> object:
    value = _blank_is_unset(value)
    return "json" if value is None else value.strip() if isinstance(value, str) else value


#: An ISO 639-1 code (``en``); case is ignored and the code is stored lower-case.
LanguageCode = Annotated[
    str,
    Field(min_length=2, max_length=3, description="An ISO 639-1 language code, such as `en`."),
    AfterValidator(_known_language),
]

Temperature = Annotated[
    float,
    Field(ge=0, le=1, allow_inf_nan=False, description="Sampling temperature, 0 to 1."),
]

Prompt = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        pattern="^[^\\x00]*$",
        description="Text to guide the style or vocabulary (names, spellings).",
    ),
]


#: The ISO 639-1 codes, as the contract lists them for ``language``.
_LANGUAGE_CODES: list[JsonValue] = list(sorted(ISO_639_1))


class TranscriptionParameters(FormModel):
    """How to transcribe: the text fields of ``POST /api/v1/transcription/transcribe``.

    ``timestamp_granularities`` (sent as ``timestamp_granularities[]``, repeatable) needs
    ``response_format=verbose_json``, as with OpenAI; segments are always in ``verbose_json``,
    words only when ``word`` is asked for.
    """

    language: Annotated[LanguageCode | SkipJsonSchema[None], BeforeValidator(_blank_is_unset)] = (
        Field(
            None,
            description="The spoken language (ISO 639-1); unset = the model's own detection.",
            # The codes themselves (any case is accepted; the contract names them lower-case).
            json_schema_extra={"enum": _LANGUAGE_CODES},
        )
    )
    model: Annotated[ModelName | SkipJsonSchema[None], BeforeValidator(_blank_is_unset)] = Field(
        None,
        description="A transcription model from `GET /api/v1/transcription/languages`; unset = the "
        "default.",
    )
    prompt: Annotated[Prompt | SkipJsonSchema[None], BeforeValidator(_blank_is_unset)] = None
    temperature: Annotated[Temperature | SkipJsonSchema[None], BeforeValidator(_form_number)] = (
        Field(
            None,
            description="Sampling temperature, 0 to 1, written as a decimal number (`0.2`; no "
            "exponent).",
        )
    )
    response_format: Annotated[ResponseFormat, BeforeValidator(_format_or_default)] = "json"
    timestamp_granularities: Annotated[
        list[TimestampGranularity], BeforeValidator(_one_or_many)
    ] = Field(
        default_factory=list,
        max_length=2,
        description="Needs `response_format=verbose_json`.",
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("timestamp_granularities")
    @classmethod
    def _unique_and_verbose(
        cls, value: list[TimestampGranularity], info: ValidationInfo
    ) -> list[TimestampGranularity]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("list_duplicates", "Each granularity may be given once")
        if value and info.data.get("response_format", "json") != "verbose_json":
            raise PydanticCustomError(
                "verbose_json_required",
                "`timestamp_granularities` needs `response_format=verbose_json`",
            )
        return value

    @property
    def word_timestamps(self) -> bool:
        """Whether word timestamps were asked for."""
        return "word" in self.timestamp_granularities


class TranscriptionForm(TranscriptionParameters):
    """``POST /api/v1/transcription/transcribe`` (``multipart/form-data``): the audio and how to
    transcribe it."""

    # What JSON Schema can say of the cross-field rule (``_unique_and_verbose``).
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "required": ["timestamp_granularities"],
                "properties": {"timestamp_granularities": {"minItems": 1}},
            },
            "then": {
                "required": ["response_format"],
                "properties": {"response_format": {"const": "verbose_json"}},
            },
        }
    )

    file: UploadedFile = Field(
        description="The audio (WAV, FLAC, MP3, Ogg, M4A, WebM, ...: see GET /formats); its "
        "format is read from its content, never from its name or declared type.",
        json_schema_extra={"minLength": 1},
    )


# -- transcripts ---------------------------------------------------------------------------------


class TranscriptionWord(ResponseModel):
    """One word and when it is spoken, in seconds from the start of the audio."""

    word: str
    start: float = Field(ge=0)
    end: float = Field(ge=0)


class TranscriptionSegment(ResponseModel):
    """A stretch of speech (about a sentence) and its timing, in seconds."""

    id: int = Field(ge=0)
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    avg_logprob: float | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Mean log probability of the segment's tokens (when the model gives it).",
    )
    no_speech_prob: float | None = Field(
        None,
        ge=0,
        le=1,
        exclude_if=lambda v: v is None,
        description="Probability that the segment holds no speech (when the model gives it).",
    )


class TranscriptionResponse(ResponseModel):
    """``response_format=json``: the text of the audio."""

    text: str
    language: str | None = Field(
        description="ISO 639-1 code of the spoken language (asked for or detected); null if unknown."
    )
    duration: float = Field(ge=0, description="Length of the audio, in seconds.")
    model: str


class VerboseTranscriptionResponse(TranscriptionResponse):
    """``response_format=verbose_json``: the text with its segments (and words, when asked)."""

    segments: list[TranscriptionSegment]
    words: list[TranscriptionWord] | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Present when `timestamp_granularities[]=word` was asked for.",
    )


# -- formats and languages -----------------------------------------------------------------------


class AudioContainer(ResponseModel):
    """A container (file format) this deployment can read."""

    name: str = Field(description="FFmpeg's name of the demuxer, e.g. `ogg`.")
    description: str
    extensions: list[str]


class AudioCodec(ResponseModel):
    """An audio codec this deployment can decode."""

    name: str
    description: str


class AudioLimits(ResponseModel):
    """The limits an upload must respect."""

    max_audio_bytes: int = Field(ge=1)
    max_audio_seconds: float = Field(gt=0)
    sample_rate: int = Field(ge=1, description="Audio is resampled to this rate (mono).")


class TranscriptionOutput(RootModel[VerboseTranscriptionResponse | TranscriptionResponse]):
    """The JSON answer of ``POST /transcribe``: ``json`` or ``verbose_json`` (the other formats
    are plain text, SubRip or WebVTT)."""


class AudioFormatList(ResponseModel):
    """What ``POST /transcribe`` accepts here (probed from the bundled FFmpeg) and returns."""

    containers: list[AudioContainer]
    codecs: list[AudioCodec]
    response_formats: list[ResponseFormat]
    timestamp_granularities: list[TimestampGranularity]
    limits: AudioLimits
    decoder: str = Field(description="The decoding library and its FFmpeg version.")


class SupportedLanguage(ResponseModel):
    """A language by ISO 639-1 code and English name."""

    code: str
    name: str


class TranscriptionModelLanguages(ResponseModel):
    """One servable model and the languages it transcribes."""

    model: str
    provider: Literal["local", "openai"]
    multilingual: bool
    timestamps: bool = Field(description="Whether it gives segments (verbose_json, srt, vtt).")
    languages: list[SupportedLanguage]
    default: bool


class TranscriptionLanguageList(ResponseModel):
    """Every servable transcription model with its languages, and the default model."""

    data: list[TranscriptionModelLanguages]
    default_model: str


# -- cost ---------------------------------------------------------------------------------------


class CostEstimateRequest(RequestModel):
    """Estimate what transcribing ``duration_seconds`` of audio takes and costs."""

    duration_seconds: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
    model: ModelName | None = Field(
        None,
        description="A transcription model from `GET /api/v1/transcription/languages`; default, "
        "the deployment's default.",
    )


class CostEstimateResponse(ResponseModel):
    """Processing time (from the configured real-time factor) and, for paid providers, price."""

    model: str
    provider: Literal["local", "openai"]
    duration_seconds: float
    real_time_factor: float | None = Field(
        description="Processing seconds per second of audio; null when not known yet."
    )
    real_time_factor_source: Literal["benchmark", "unknown"] = Field(
        description="`benchmark`: the configured factor (`SYNTHSTACK_WHISPER_REAL_TIME_FACTOR` for"
        " the local model; its default is the figure the transcription benchmark measured on 2"
        " cores); `unknown`: no figure for this provider."
    )
    estimated_processing_seconds: float | None
    price_per_minute_usd: float | None = Field(
        description="The provider's documented price; null for local models (no fee)."
    )
    estimated_cost_usd: float | None
    exceeds_limit: bool = Field(
        description="The duration is over this deployment's `max_audio_seconds`."
    )
