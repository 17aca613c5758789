"""The ASGI application: ``uvicorn synthstack_django.asgi:application``.

The views are synchronous (Django REST framework's are), so under ASGI Django runs them in its
thread-sensitive executor, one at a time; WSGI (gunicorn with threads) is the recommended way to
serve this backend.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthstack_django.settings")

application = get_asgi_application()
