"""The request pipeline: one request of one operation, from :class:`HttpRequest` to
:class:`HttpResponse`.

Authentication, the rate limit, the body limit, parsing (JSON or a streamed form), validation,
admission (a place to run, or a 503 when the queue is full: :mod:`synthstack_core.admission`), the
handler, rendering and error translation, in that order, inside the observability step (metrics, the
request's span and the access log; see ``docs/architecture.md``). Both adapters reach it through
:meth:`SynthStack.handle <synthstack_core.service.SynthStack.handle>`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from synthstack_core import tracing
from synthstack_core.admission import NEVER_SHED_TAGS, Admission
from synthstack_core.errors import translate
from synthstack_core.http import (
    HttpRequest,
    HttpResponse,
    check_json_body,
    error_response,
    event_stream_response,
    json_response,
    raw_response,
)
from synthstack_core.multipart import FormData, parse_form, receive_form
from synthstack_core.observability import ObservedRequest
from synthstack_core.preferences import preferences
from synthstack_core.ratelimits import DEFAULT_POLICY, RateLimitDecision, RateLimiter
from synthstack_core.registry import Handler, Operation
from synthstack_core.replies import EventStream, RawReply, Reply, Result
from synthstack_core.schemas.common import Limits
from synthstack_core.security import ApiKeyAuthenticator, Principal
from synthstack_core.settings import Settings
from synthstack_core.usage import UsageRecorder
from synthstack_core.validation import parse_json_body, parse_params

__all__ = ["Pipeline", "translate"]

logger = logging.getLogger("synthstack")


class Pipeline:
    """Serves requests with the started stack's authenticator and bound handlers."""

    def __init__(
        self,
        settings: Settings,
        limits: Limits,
        auth: ApiKeyAuthenticator,
        handlers: Mapping[str, Handler],
        *,
        rate_limiter: RateLimiter | None = None,
        usage: UsageRecorder | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.auth = auth
        self.handlers = handlers
        self.rate_limiter = rate_limiter
        self.usage = usage
        self.admission = Admission(settings.max_active_requests, settings.max_queued_requests)

    def body_limit(self, operation: Operation) -> int:
        """The most bytes ``operation`` accepts as its request body."""
        limit: int = getattr(self.settings, operation.body_limit)
        return limit

    async def handle(self, operation: Operation, request: HttpRequest) -> HttpResponse:
        """Serve one request of ``operation``, measured and logged (the observability step:
        :class:`~synthstack_core.observability.ObservedRequest`)."""
        observed = ObservedRequest(operation.operation_id, request, self.usage, operation.path)
        try:
            response = await self._serve(operation, observed.request, observed)
        except BaseException:  # cancelled (its client went away): only logged
            observed.finish(None)
            raise
        observed.finish(response)
        return response

    async def _serve(
        self, operation: Operation, request: HttpRequest, observed: ObservedRequest
    ) -> HttpResponse:
        """Serve one request of ``operation``."""
        request_id = observed.request_id
        form: FormData | None = None
        counted: RateLimitDecision | None = None
        if self.usage is not None:  # nobody's until the caller is known
            self.usage.bind(None)
        try:
            caller = None
            if operation.authenticated:
                with tracing.span("authenticate"):
                    caller = await self.auth.authenticate(request.headers)
            observed.tenant = caller.tenant if caller is not None else None
            if self.usage is not None:  # what the features count goes to the caller's tenant
                self.usage.bind(observed.tenant)
            with tracing.span("rate limit"):
                counted = await self._rate_limit(operation, caller, request.headers)
            params = None
            if operation.params_model is not None:
                params = parse_params(operation.params_model, request.path_params, request.query)
            body = None
            if operation.request_model is not None and operation.form:
                form = await receive_form(
                    request.headers,
                    request.stream if request.stream is not None else _chunks(request.body),
                    limit=self.body_limit(operation),
                    tmp_dir=self.settings.upload_dir,
                )
                body = parse_form(operation.request_model, form, self.limits)
            elif operation.request_model is not None:
                check_json_body(request, self.body_limit(operation))
                body = parse_json_body(operation.request_model, request.body, self.limits)
            if NEVER_SHED_TAGS.intersection(operation.tags):
                response = await self._run(operation, caller, body, params, request, request_id)
            else:  # a place to run, after waiting in the queue (or a 503 when it is full)
                async with self.admission.admit(operation.operation_id):
                    response = await self._run(operation, caller, body, params, request, request_id)
        except Exception as exc:
            response = error_response(translate(exc), request_id=request_id, path=request.path)
        finally:
            if form is not None:
                form.close()
        if counted is not None:  # every answer after the count says what is left
            response.headers.extend(counted.headers())
        return response

    async def _run(
        self,
        operation: Operation,
        caller: Principal | None,
        body: Any,
        params: Any,
        request: HttpRequest,
        request_id: str,
    ) -> HttpResponse:
        """The handler and its rendered answer (a stream: until its first event is ready)."""
        result = await self._call(operation, caller, body, params, request)
        return await self._render(operation, result, request_id, request.path)

    async def _rate_limit(
        self, operation: Operation, caller: Principal | None, headers: Mapping[str, str]
    ) -> RateLimitDecision | None:
        """Count the request against the caller's limit for the operation's group (its first
        tag), and bind the caller's token budget to the request: raises
        :class:`~synthstack_core.errors.RateLimitExceeded` over the limit."""
        if self.rate_limiter is None:
            return None
        # The chat models this request runs spend the caller's tenant's token budget.
        self.rate_limiter.bind(caller.tenant if caller is not None else None)
        if caller is None:
            return None
        group = operation.tags[0] if operation.tags else DEFAULT_POLICY
        return await self.rate_limiter.check(group, caller, headers)

    async def _call(
        self,
        operation: Operation,
        caller: Principal | None,
        body: Any,
        params: Any,
        request: HttpRequest,
    ) -> Result:
        """The handler, given its arguments by name."""
        given: dict[str, Any] = {
            "body": body,
            "params": params,
            "caller": caller,
            "request": request,
        }
        if "prefer" in operation.arguments:
            given["prefer"] = preferences(request.headers.get("prefer", ""))
        if caller is not None:
            given["tenant"] = caller.tenant
        arguments = {
            name: given[name] if name in given else getattr(params, name)
            for name in operation.arguments
        }
        result = self.handlers[operation.operation_id](**arguments)
        if inspect.isawaitable(result):
            return await result
        return result

    @staticmethod
    async def _render(
        operation: Operation, result: Result, request_id: str, path: str
    ) -> HttpResponse:
        if isinstance(result, EventStream):
            return await event_stream_response(
                result.events, request_id=request_id, path=path, translate=translate
            )
        if isinstance(result, RawReply):
            return raw_response(
                result.body,
                media_type=result.media_type,
                status=result.status,
                request_id=request_id,
            )
        reply = result if isinstance(result, Reply) else Reply(result, operation.status)
        response = json_response(reply.body, status=reply.status, request_id=request_id)
        response.headers.extend(reply.headers)
        return response


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    """A body already in memory, as a stream."""
    if body:
        yield body
