"""Test utilities shipped with the SynthStack core.

These helpers let tests and benchmarks exercise real client code (such as the official
``openai`` SDK) without any network access. They use only the standard library and numpy, so
importing them never pulls in a web framework.
"""

from synthstack_core.testing.openai_stub import OpenAIStub, RecordedRequest, expected_embedding

__all__ = ["OpenAIStub", "RecordedRequest", "expected_embedding"]
