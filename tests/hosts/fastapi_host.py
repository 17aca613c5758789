"""A minimal FastAPI host application: SynthStack mounted under ``/ml``, one route of its own."""

# No `from __future__ import annotations`: FastAPI reads the route's dependency from its annotation,
# which refers to a local name.
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI

from synthstack_core import Principal, SynthStackError
from synthstack_fastapi import ApiKeyAuth, create_app, problem_handler


def build_host() -> FastAPI:
    """The host, with SynthStack (built from the environment) at ``/ml``."""
    ml = create_app()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Starlette runs no mounted app's lifespan: the host runs SynthStack's inside its own.
        async with ml.router.lifespan_context(ml):
            yield

    host = FastAPI(lifespan=lifespan)
    host.mount("/ml", ml)
    host.add_exception_handler(SynthStackError, problem_handler)

    @host.get("/whoami")
    async def whoami(principal: Annotated[Principal, Depends(ApiKeyAuth(ml))]) -> dict[str, str]:
        return {"tenant": principal.tenant}

    return host
