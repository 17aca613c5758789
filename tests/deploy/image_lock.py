"""requirements.lock: the versions the service images install, read from the test environment.

The Dockerfiles install the core and their adapter with ``uv pip install --constraint
requirements.lock``, so an image gets exactly the versions the tests ran with. The lock lists every
distribution the core (with its extra ``all``, as the images install it) and both adapters need at
run time (their requirements, followed through extras and environment markers, as installed here),
each at the version installed here; the repository's ``[tool.uv] override-dependencies`` apply, as
they do in the Dockerfiles (so ``llama-cpp-python`` is not in it). Test-only tools (pytest, ...) are not.

Regenerate it after the test environment changes (tests/deploy/test_compose.py fails until then):

    .hatch/test/bin/python -m tests.deploy.image_lock > requirements.lock
"""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = ROOT / "requirements.lock"
#: The local projects the images install from source; they are not in the lock.
LOCAL = ("synthstack-core", "synthstack-fastapi", "synthstack-django")
#: The extras the images install them with: the core with every one (services/*/Dockerfile).
LOCAL_EXTRAS = {"synthstack-core": frozenset({"all"})}
HEADER = """\
# The versions the service images install (services/*/Dockerfile: `uv pip install --constraint`):
# every run-time dependency of synthstack-core, synthstack-fastapi and synthstack-django, at the
# version of the test environment the tests ran with. Generated; do not edit. Regenerate with
#   .hatch/test/bin/python -m tests.deploy.image_lock > requirements.lock
"""


def _overrides() -> dict[NormalizedName, Requirement]:
    """The repository's uv overrides (pyproject.toml `[tool.uv] override-dependencies`)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    entries = pyproject.get("tool", {}).get("uv", {}).get("override-dependencies", [])
    return {canonicalize_name(req.name): req for req in map(Requirement, entries)}


def runtime_versions() -> dict[NormalizedName, str]:
    """Every distribution the local projects need at run time, with its installed version."""
    overrides = _overrides()
    extras_done: dict[NormalizedName, set[str]] = {}
    todo: list[tuple[str, frozenset[str]]] = [
        (name, LOCAL_EXTRAS.get(name, frozenset())) for name in LOCAL
    ]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        done = extras_done.setdefault(key, set())
        new = ({""} | {canonicalize_name(extra) for extra in extras}) - done
        if not new:
            continue
        done |= new
        try:
            dist = importlib.metadata.distribution(key)
        except importlib.metadata.PackageNotFoundError as exc:
            raise LookupError(f"{name} is required but not installed in {sys.prefix}") from exc
        for raw in dist.requires or []:
            req = Requirement(raw)
            req = overrides.get(canonicalize_name(req.name), req)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in new):
                todo.append((req.name, frozenset(req.extras)))
    return {
        key: importlib.metadata.version(key)
        for key in sorted(extras_done)
        if key not in {canonicalize_name(name) for name in LOCAL}
    }


def render(versions: dict[NormalizedName, str]) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))


def read_lock(text: str) -> dict[NormalizedName, str]:
    """The `name==version` lines of a lock (comments and blank lines skipped)."""
    pins: dict[NormalizedName, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            raise ValueError(f"not an exact pin: {raw!r}")
        pins[canonicalize_name(name.strip())] = version.strip()
    return pins


if __name__ == "__main__":
    sys.stdout.write(render(runtime_versions()))
