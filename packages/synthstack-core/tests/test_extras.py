"""The extras of synthstack-core, tried for real: a subprocess Python in which the extras' packages
cannot be imported (a ``sys.meta_path`` finder refuses them, as if they were not installed).

* importing ``synthstack_core`` imports none of them;
* ``SynthStack.start()`` with a default whose extra is missing fails before anything starts, with a
  message naming the extra;
* a request for a part that is not a default answers a problem naming it (415 for a document type,
  501 for offline analysis).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from synthstack_core.extras import EXTRAS, install_hint, installed
from synthstack_core.providers.factory import check_configured_extras
from synthstack_core.settings import Settings

#: Every module an extra provides, and the heavy packages they pull in.
OPTIONAL = sorted({m for modules in EXTRAS.values() for m in modules} | {"ctranslate2", "nltk"})

#: Run first in the subprocess: refuse ``BLOCKED`` (JSON, module names) and their submodules as if
#: not installed.
BLOCKER = """
import importlib.abc, json, os, sys
BLOCKED = tuple(json.loads(os.environ["BLOCKED"]))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == blocked or name.startswith(blocked + ".") for blocked in BLOCKED):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
"""


def run_without(blocked: list[str], code: str) -> dict[str, object]:
    """Run ``code`` (which prints one JSON object last) with ``blocked`` unimportable."""
    env = {"BLOCKED": json.dumps(blocked), "PATH": "", "HOME": "/nonexistent"}
    completed = subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_every_extra_is_installed_here() -> None:
    # The tests run with `all`; the blocking below is what stands for a missing extra.
    assert all(installed(extra) for extra in EXTRAS)
    check_configured_extras(Settings(_env_file=None))  # type: ignore[call-arg]


def test_the_blocker_blocks() -> None:
    result = run_without(
        ["yake"],
        """
        from synthstack_core.extras import installed
        try:
            import yake
            imported = True
        except ModuleNotFoundError:
            imported = False
        print(json.dumps({"imported": imported, "installed": installed("analysis")}))
        """,
    )
    assert result == {"imported": False, "installed": False}


def test_importing_the_core_imports_no_optional_package() -> None:
    result = run_without(
        OPTIONAL,
        """
        import synthstack_core, synthstack_core.service, synthstack_core.providers.factory
        import synthstack_core.features.parsing, synthstack_core.features.analysis
        import synthstack_core.features.audio, synthstack_core.features.transcription
        print(json.dumps({"loaded": sorted(sys.modules)}))
        """,
    )
    loaded = set(result["loaded"])  # type: ignore[arg-type]
    assert "synthstack_core" in loaded
    optional = {
        name
        for name in loaded
        if any(name == module or name.startswith(module + ".") for module in OPTIONAL)
    }
    assert not optional, optional


# The settings that make each extra a default (the others' defaults stay installed).
STARTUP_CASES = {
    "local-embeddings": {},
    "local-llm": {},
    "local-whisper": {},
    "audio": {"SYNTHSTACK_TRANSCRIPTION_MODEL": "whisper-1", "OPENAI_API_KEY": "sk-test"},
    "embedded-postgres": {"DATABASE_URL": ""},
    "qdrant": {"SYNTHSTACK_VECTOR_STORE": "qdrant"},
    # Not a default: asked for by the standard variables.
    "otel": {"OTEL_TRACES_EXPORTER": "otlp"},
}


@pytest.mark.parametrize("extra", sorted(STARTUP_CASES))
def test_start_fails_naming_a_missing_default_extra(extra: str, tmp_path: object) -> None:
    environment = {
        # Never connected to: the check comes before anything starts.
        "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
        "SYNTHSTACK_DATA_DIR": str(tmp_path),
        **STARTUP_CASES[extra],
    }
    # The other extras a default needs stay importable (audio comes with local Whisper too).
    blocked = [m for m in EXTRAS[extra] if extra != "local-whisper" or m != "av"]
    result = run_without(
        blocked,
        f"""
        import asyncio, os
        os.environ.update({environment!r})
        from synthstack_core import Settings, SynthStack
        from synthstack_core.extras import ExtraNotInstalled
        stack = SynthStack(Settings(_env_file=None))
        try:
            asyncio.run(stack.start())
            outcome = {{"started": True}}
        except ExtraNotInstalled as exc:
            outcome = {{"extra": exc.extra, "detail": exc.detail, "status": exc.status}}
        print(json.dumps(outcome))
        """,
    )
    assert result["extra"] == extra
    assert install_hint(extra) in str(result["detail"])
    assert result["status"] == 501


def test_a_document_type_without_its_extra_is_a_415_naming_it() -> None:
    result = run_without(
        list(EXTRAS["documents"]),
        """
        from synthstack_core.errors import problem_for
        from synthstack_core.features.parsing import parse_document
        outcomes = {}
        for kind, data in (("pdf", b"%PDF-1.4\\n"), ("html", b"<p>hi</p>"), ("markdown", b"# hi")):
            try:
                parse_document(data, source_type=kind, max_chars=10000)
                outcomes[kind] = None
            except Exception as exc:
                problem = problem_for(exc, request_id="r", instance="/x")
                outcomes[kind] = [problem.status, problem.body["detail"]]
        print(json.dumps(outcomes))
        """,
    )
    for kind, outcome in result.items():
        assert isinstance(outcome, list), kind
        assert outcome[0] == 415, outcome
        assert install_hint("documents") in outcome[1]


def test_offline_analysis_without_its_extra_is_a_501_naming_it() -> None:
    result = run_without(
        list(EXTRAS["analysis"]),
        """
        from synthstack_core.errors import problem_for
        from synthstack_core.features.analysis import offline as analysis
        outcomes = {}
        for name, call in (
            ("sentiment", lambda: analysis._sentiment("I love it.", False)),
            ("sentences", lambda: analysis._TOOLKIT.sentences("One. Two.")),
            ("keywords", lambda: analysis._keywords("Cats and dogs and cats.", 3)),
        ):
            try:
                call()
                outcomes[name] = None
            except Exception as exc:
                problem = problem_for(exc, request_id="r", instance="/x")
                outcomes[name] = [problem.status, problem.body["code"], problem.body["detail"]]
        print(json.dumps(outcomes))
        """,
    )
    for name, outcome in result.items():
        assert isinstance(outcome, list), name
        assert outcome[:2] == [501, "extra_not_installed"], outcome
        assert install_hint("analysis") in outcome[2]


def test_the_embedded_postgres_without_its_extra_names_it(tmp_path: object) -> None:
    # What `synthstack migrate` and `synthstack keys` start when DATABASE_URL is unset.
    result = run_without(
        list(EXTRAS["embedded-postgres"]),
        f"""
        from pathlib import Path
        from synthstack_core.extras import ExtraNotInstalled
        from synthstack_core.stores.embedded import EmbeddedPostgres
        try:
            EmbeddedPostgres(Path({str(tmp_path)!r})).start()
            outcome = {{"started": True}}
        except ExtraNotInstalled as exc:
            outcome = {{"extra": exc.extra, "detail": exc.detail}}
        print(json.dumps(outcome))
        """,
    )
    assert result["extra"] == "embedded-postgres"
    assert install_hint("embedded-postgres") in str(result["detail"])


def test_traces_without_their_extra_fail_only_when_asked_for() -> None:
    """An OTLP endpoint asks for traces (the extra is named); ``OTEL_SDK_DISABLED`` or no
    variable at all does not, and then nothing of OpenTelemetry's SDK is needed."""
    result = run_without(
        list(EXTRAS["otel"]),
        """
        import os
        from synthstack_core.extras import ExtraNotInstalled
        from synthstack_core.tracing import configure_tracing
        outcomes = {}
        for name, variables in (
            ("none", {}),
            ("disabled", {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}),
            ("exporter none", {"OTEL_TRACES_EXPORTER": "none"}),
            ("endpoint", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}),
        ):
            os.environ.update(variables)
            try:
                outcomes[name] = configure_tracing()
            except ExtraNotInstalled as exc:
                outcomes[name] = [exc.extra, exc.detail]
            for variable in variables:
                del os.environ[variable]
        print(json.dumps(outcomes))
        """,
    )
    assert result["none"] is False
    assert result["disabled"] is False
    assert result["exporter none"] is False
    extra, detail = result["endpoint"]  # type: ignore[misc]
    assert extra == "otel"
    assert install_hint("otel") in detail and "OTEL_EXPORTER_OTLP_ENDPOINT" in detail
