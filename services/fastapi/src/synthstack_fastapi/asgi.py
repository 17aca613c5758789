"""ASGI entry point for servers: ``uvicorn synthstack_fastapi.asgi:app``."""

from synthstack_fastapi.app import create_app

app = create_app()
