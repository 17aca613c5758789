"""The error tree renders as RFC 9457 problems, never leaking an unexpected exception."""

from __future__ import annotations

import pytest

from synthstack_core import errors
from synthstack_core.errors import FieldError, InvalidRequest, RateLimited, problem_for

LEAVES = [
    (errors.MalformedBody, 400),
    (errors.Unauthenticated, 401),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.InvalidRequest, 422),
    (errors.ModelNotAvailable, 422),
    (errors.ProviderError, 502),
    (errors.DependencyUnavailable, 503),
    (errors.ProviderTimeout, 504),
]


@pytest.mark.parametrize(("cls", "status"), LEAVES)
def test_each_leaf_knows_its_status_and_code(
    cls: type[errors.SynthStackError], status: int
) -> None:
    problem = problem_for(cls("something"), request_id="r1", instance="/x")
    assert problem.status == status
    assert problem.body["code"] == cls.code
    assert problem.body["type"].endswith(cls.code.replace("_", "-"))
    assert problem.body["request_id"] == "r1"
    assert problem.body["instance"] == "/x"
    assert problem.body["detail"] == "something"


def test_unexpected_exception_reveals_nothing() -> None:
    problem = problem_for(RuntimeError("password=hunter2"), request_id="r", instance=None)
    assert problem.status == 500
    assert "hunter2" not in problem.to_bytes().decode()
    assert problem.body["code"] == "internal_error"


def test_validation_errors_are_listed() -> None:
    error = InvalidRequest(
        "bad", errors=[FieldError(("texts", 1), "too short", "string_too_short")]
    )
    body = problem_for(error, request_id="r", instance=None).body
    assert body["errors"] == [{"loc": ["texts", 1], "msg": "too short", "type": "string_too_short"}]


def test_rate_limited_says_when_to_retry() -> None:
    assert problem_for(RateLimited(retry_after=2.2), request_id="r", instance=None).headers == {
        "Retry-After": "3"
    }


def test_unauthenticated_challenges_with_bearer() -> None:
    headers = problem_for(errors.Unauthenticated(), request_id="r", instance=None).headers
    assert headers["WWW-Authenticate"].startswith("Bearer")
