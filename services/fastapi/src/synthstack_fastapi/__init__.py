"""SynthStack's FastAPI adapter: routes built from the core's operation registry."""

from synthstack_fastapi.app import create_app

__all__ = ["create_app"]
