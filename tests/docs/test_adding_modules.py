"""docs/adding-modules.md quotes the example plugin's real code, and its example answer is real."""

from __future__ import annotations

import json
import re
from pathlib import Path

from synthstack_readability import ReadabilityRequest, ReadabilityService, ReadabilitySettings

ROOT = Path(__file__).parents[2]
GUIDE = (ROOT / "docs" / "adding-modules.md").read_text(encoding="utf-8")
QUOTE = re.compile(r"<!-- quote: (?P<path>\S+) -->\n```\w*\n(?P<code>.*?)```\n", re.DOTALL)


def test_every_quote_is_in_the_file_it_names() -> None:
    quotes = list(QUOTE.finditer(GUIDE))
    assert len(quotes) >= 7
    for quote in quotes:
        source = (ROOT / quote["path"]).read_text(encoding="utf-8")
        assert quote["code"] in source, f"{quote['path']} no longer holds:\n{quote['code']}"


def test_the_example_answer_is_what_the_plugin_answers() -> None:
    request = re.search(r"-d '(\{.*\})'\n# (\{.*\})\n", GUIDE)
    assert request is not None
    body, answer = json.loads(request[1]), json.loads(request[2])
    service = ReadabilityService(ReadabilitySettings())
    assert service.score(ReadabilityRequest(**body)).model_dump() == answer


def test_the_guide_is_linked() -> None:
    for document in ("README.md", "docs/architecture.md"):
        assert "adding-modules.md" in (ROOT / document).read_text(encoding="utf-8"), document
