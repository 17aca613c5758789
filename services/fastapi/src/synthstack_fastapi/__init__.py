"""SynthStack's FastAPI adapter: routes built from the core's operation registry."""

from synthstack_fastapi.app import ApiKeyAuth, create_app, problem_handler

__all__ = ["ApiKeyAuth", "create_app", "problem_handler"]
