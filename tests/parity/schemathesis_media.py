"""Files for schemathesis to upload: real documents and real audio, drawn by Hypothesis.

The contract says what each upload's file part is (``encoding.file.contentType``): a document for
``POST /api/v1/rag/documents``, audio for ``POST /api/v1/transcription/transcribe``. Schemathesis
draws a part's bytes from a generator registered for its media type; without one it sends arbitrary
bytes or its own image samples, which both services rightly refuse (415, 422), so no generated
upload could ever be accepted and the checks would never see a stored document or a transcript.

Loaded by ``schemathesis.toml`` (``hooks``), for the live runs and the parity suite alike. Only
media types no other operation of the contract uses are registered (never ``text/plain``, whose
serializer schemathesis already has).
"""

from __future__ import annotations

import io
import math
import random
import wave
from array import array

import schemathesis
from hypothesis import strategies as st

_VOCABULARY = (
    "cats purr when they are content dogs bark at strangers solar power grows fast around the "
    "world storage remains the main challenge at night cheaper batteries help the grid grow"
)
_WORDS = _VOCABULARY.split()

_sentence = st.lists(st.sampled_from(_WORDS), min_size=3, max_size=12).map(
    lambda words: " ".join(words).capitalize() + "."
)
_paragraph = st.lists(_sentence, min_size=1, max_size=5).map(" ".join)
_paragraphs = st.lists(_paragraph, min_size=1, max_size=4)


@st.composite
def markdown_documents(draw: st.DrawFn) -> bytes:
    """A Markdown document: a heading, then paragraphs (some under a second-level heading)."""
    title = draw(_sentence).rstrip(".")
    parts = [f"# {title}"]
    for paragraph in draw(_paragraphs):
        if draw(st.booleans()):
            parts.append(f"## {draw(_sentence).rstrip('.')}")
        parts.append(paragraph)
    return ("\n\n".join(parts) + "\n").encode()


@st.composite
def html_documents(draw: st.DrawFn) -> bytes:
    """An HTML page with a title and paragraphs."""
    title = draw(_sentence).rstrip(".")
    body = "".join(f"<p>{paragraph}</p>" for paragraph in draw(_paragraphs))
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    ).encode()


@st.composite
def wav_audio(draw: st.DrawFn) -> bytes:
    """A short 16-bit PCM WAV file: silence, a tone or noise, mono or stereo, at common rates."""
    rate = draw(st.sampled_from([8000, 16000, 22050, 44100]))
    channels = draw(st.sampled_from([1, 2]))
    seconds = draw(st.floats(min_value=0.1, max_value=1.0))
    kind = draw(st.sampled_from(["silence", "tone", "noise"]))
    amplitude = draw(st.floats(min_value=0.05, max_value=0.8)) * 32767
    frequency = draw(st.floats(min_value=100, max_value=2000))
    noise = random.Random(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    samples = array("h")
    for index in range(int(rate * seconds)):
        if kind == "silence":
            value = 0.0
        elif kind == "tone":
            value = amplitude * math.sin(2 * math.pi * frequency * index / rate)
        else:
            value = noise.uniform(-amplitude, amplitude)
        samples.extend([int(value)] * channels)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


schemathesis.openapi.media_type("text/markdown", markdown_documents())
schemathesis.openapi.media_type("text/html", html_documents())
schemathesis.openapi.media_type("audio/wav", wav_audio(), aliases=["audio/x-wav", "audio/wave"])
