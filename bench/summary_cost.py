"""What an offline summary costs at the worst case under the limits, before and after the bound.

``POST /api/v1/analysis/summarize`` splits the text into sentences (pysbd) and ranks them with
TextRank (sumy). Two costs grew with the square of the sentence count: pysbd's own ``segment``
looks every sentence up again from the start of the text, and TextRank compares every pair of
distinct sentences. The core now splits with ``offline._segment`` (the same sentences, in linear
time) and ranks at most ``MAX_RANKED_SENTENCES`` sentences, chosen by a linear centrality.

``before`` runs the libraries as the core called them until then (``Segmenter.segment``, then
``TextRankSummarizer.rate_sentences`` over every distinct sentence); ``after`` runs the core's
``_summary``. Each figure is the process CPU time of one call (the machine may be shared: CPU
time, not wall time), with the number of TextRank edges computed.

Run it from the repository root::

    .hatch/default/bin/python bench/summary_cost.py           # every case, about two minutes
    .hatch/default/bin/python bench/summary_cost.py --quick   # the normal text and 1,000 sentences
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthstack_core.features.analysis import offline

ROOT = Path(__file__).resolve().parent.parent


def cases(quick: bool) -> dict[str, str]:
    """The texts: a normal one (the README's start) and the worst cases under 20,000 characters."""
    normal = (ROOT / "README.md").read_text(encoding="utf-8")[:19_999]
    if quick:
        return {"normal": normal, "repeated x1000": "a. " * 1000}
    return {
        "normal": normal,
        "repeated x6666": "a. " * 6666,
        "distinct x5000": " ".join(f"w{i}." for i in range(5000))[:19_999],
    }


def counted_edges() -> tuple[Callable[[], int], Callable[[], None]]:
    """Count sumy's pairwise edge computations (the real method, wrapped)."""
    text_rank = importlib.import_module("sumy.summarizers.text_rank").TextRankSummarizer
    original = text_rank._rate_sentences_edge
    count = 0

    def edge(*args: Any) -> Any:
        nonlocal count
        count += 1
        return original(*args)

    text_rank._rate_sentences_edge = staticmethod(edge)

    def read() -> int:
        nonlocal count
        value, count = count, 0
        return value

    def restore() -> None:
        text_rank._rate_sentences_edge = staticmethod(original)

    return read, restore


def before(text: str) -> None:
    """The summary's costly steps as they were: pysbd's ``segment``, TextRank over all."""
    pysbd = importlib.import_module("pysbd")
    dom = importlib.import_module("sumy.models.dom")
    summarizer, _ = offline._TOOLKIT.textrank()
    parts = pysbd.Segmenter(language="en", clean=False).segment(text)
    sentences = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    tokenizer = offline._WordTokenizer()
    document = dom.ObjectDocumentModel(
        [dom.Paragraph([dom.Sentence(s, tokenizer) for s in sentences])]
    )
    summarizer.rate_sentences(document)


def after(text: str) -> None:
    """The core's summary."""
    offline._summary(text, 100, None)


def cpu(call: Callable[[str], None], text: str) -> float:
    start = time.process_time()
    call(text)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases only")
    args = parser.parse_args()
    after("Warm up. Load the libraries.")
    edges, restore = counted_edges()
    try:
        print(
            f"{'case':<16}{'sentences':>10}{'before s':>10}{'edges':>12}"
            f"{'after s':>9}{'edges':>8}{'ratio':>8}"
        )
        for name, text in cases(args.quick).items():
            sentences = len(offline.sentences_of(text))
            old = cpu(before, text)
            old_edges = edges()
            new = cpu(after, text)
            new_edges = edges()
            print(
                f"{name:<16}{sentences:>10}{old:>10.2f}{old_edges:>12}"
                f"{new:>9.2f}{new_edges:>8}{old / max(new, 1e-9):>8.1f}"
            )
    finally:
        restore()


if __name__ == "__main__":
    main()
