"""SynthStack's test doubles (a package of their own, not in the ``synthstack-core`` wheel).

These helpers let tests and benchmarks exercise real client code (such as the official
``openai`` SDK) without any network access. They use only the standard library and numpy, so
importing them never pulls in a web framework.
"""

from synthstack_testing.anthropic_stub import AnthropicStub
from synthstack_testing.chat_stub import ChatReply, expected_chat_reply
from synthstack_testing.openai_stub import OpenAIStub, RecordedRequest, expected_embedding

__all__ = [
    "AnthropicStub",
    "ChatReply",
    "OpenAIStub",
    "RecordedRequest",
    "expected_chat_reply",
    "expected_embedding",
]
