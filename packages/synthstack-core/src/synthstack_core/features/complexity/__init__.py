"""Task complexity: estimate a task before the work, measure a merged change after it, and settle.

**The scale** (:data:`DEFAULT_SCALE`, replaceable through the service's constructor): 1 Trivial
0.25-1 h 5 points, 2 Simple 1-4 h 10, 3 Moderate 4-8 h 20, 4 Complex 8-24 h 35, 5 Epic 24-80 h 50.
A level's ``estimated_hours`` is the midpoint of its range. Every computed level (a weighted mean)
becomes a level by rounding halves up: 2.5 is level 3 (:func:`level_from_score`).

**Estimating** combines two views. *Signals* (:func:`task_signals`) are explainable rules, each a
shift from Moderate (3.0): scope words (``typo``/``rename`` down, ``migrate``/``rewrite``/
``architecture`` up), the issue type, the description's length and checklist, the number of related
files (a folder counts as three) and labels. *Neighbours* are the ``k = 7`` labelled example tasks
(``data/complexity_examples.jsonl``) closest to the task in the embedding space, weighted by
``exp(cosine / 0.1)``. The computed level is ``0.6 * neighbours + 0.4 * signals``. ``factors`` says
in words what moved it; ``confidence = 0.2 + 0.35 * neighbour_agreement + 0.35 *
signal_agreement`` (at most 0.9), where neighbour agreement is ``1 - std / 1.5`` of the neighbours'
weighted levels and signal agreement is ``1 - |neighbours - signals| / 2`` (each clipped to 0..1).
The examples are embedded once, lazily, on the first estimate.

**Analysing** a merged change turns each number into a level on a log scale between anchors (lines
changed, counting a removed line as half; files; commits; review comments; hours to merge) and
takes their weighted mean (0.45, 0.25, 0.1, 0.1, 0.1; missing ones are left out).

**Adjusting** (the same rule for ``adjustment`` and for ``analyze``'s ``point_adjustment``): the
award moves from the estimate's points half-way (``adjustment_share``) towards the actual level's
points: ``point_adjustment = round_half_up(share * (points(actual) - points(pre)))``,
``multiplier = (points(pre) + point_adjustment) / points(pre)``, ``bonus_percent = (multiplier - 1)
* 100``. Under-estimated work earns a bonus, over-estimated work a reduction, an exact estimate
neither; the multiplier grows with the actual level and shrinks with the estimated one.
"""

from synthstack_core.features.complexity.estimator import (
    DEFAULT_SCALE,
    ComplexityEstimator,
    ComplexityExample,
    ComplexityScale,
    Neighbour,
    Signal,
    level_from_score,
    load_examples,
    task_signals,
    task_text,
)
from synthstack_core.features.complexity.service import (
    MODULE,
    ComplexityService,
    parse_llm_estimate,
    prompt_for_estimate,
)

__all__ = [
    "DEFAULT_SCALE",
    "MODULE",
    "ComplexityEstimator",
    "ComplexityExample",
    "ComplexityScale",
    "ComplexityService",
    "Neighbour",
    "Signal",
    "level_from_score",
    "load_examples",
    "parse_llm_estimate",
    "prompt_for_estimate",
    "task_signals",
    "task_text",
]
