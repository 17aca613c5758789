"""Admission control (:mod:`synthstack_core.admission`) on its own: places taken in order, a full
queue refused at once with a ``Retry-After`` from the measured time of a request, and the Django
server's threads sized so that the core sees every request it could refuse. (Both backends, for
real: ``tests/parity/test_overload.py``.)"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from synthstack_core import Settings
from synthstack_core.admission import Admission
from synthstack_core.cli import django_threads
from synthstack_core.errors import Overloaded


async def _until(condition: object) -> None:
    for _ in range(1000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never met")


def test_waiting_requests_run_in_order_and_one_more_is_refused() -> None:
    async def scenario() -> tuple[list[int], Overloaded, int]:
        admission = Admission(max_active=1, max_queued=2)
        gate = asyncio.Event()
        order: list[int] = []

        async def request(n: int) -> None:
            async with admission.admit("op"):
                order.append(n)
                await gate.wait()

        tasks = [asyncio.create_task(request(0))]
        await _until(lambda: admission.active == 1)
        for n in (1, 2):
            tasks.append(asyncio.create_task(request(n)))
            await _until(lambda n=n: admission.waiting == n)
        with pytest.raises(Overloaded) as refused:
            async with admission.admit("op"):
                raise AssertionError("admitted over the bound")
        gate.set()
        await asyncio.gather(*tasks)
        return order, refused.value, admission.waiting

    order, refused, waiting = asyncio.run(scenario())
    assert order == [0, 1, 2]
    assert refused.status == 503 and refused.instance_code == "overloaded"
    assert refused.headers["Retry-After"] == "1"  # nothing measured yet: the least
    assert waiting == 0


def test_unbounded_queue_refuses_nothing() -> None:
    async def scenario() -> int:
        admission = Admission(max_active=2, max_queued=0)
        done = 0

        async def request() -> None:
            nonlocal done
            async with admission.admit("op"):
                await asyncio.sleep(0.001)
                done += 1

        await asyncio.gather(*(request() for _ in range(50)))
        return done

    assert asyncio.run(scenario()) == 50


def test_retry_after_is_the_work_ahead_over_the_places() -> None:
    async def scenario() -> tuple[str, float | None]:
        admission = Admission(max_active=2, max_queued=1)
        # Measure a request holding its place ~0.6 s.
        async with admission.admit("op"):
            await asyncio.sleep(0.6)
        gate = asyncio.Event()

        async def request() -> None:
            async with admission.admit("op"):
                await gate.wait()

        tasks = [asyncio.create_task(request()) for _ in range(3)]
        await _until(lambda: admission.active == 2 and admission.waiting == 1)
        try:
            async with admission.admit("op"):
                raise AssertionError("admitted over the bound")
        except Overloaded as exc:
            retry_after = exc.headers["Retry-After"]
        gate.set()
        await asyncio.gather(*tasks)
        return retry_after, admission.service_seconds

    retry_after, measured = asyncio.run(scenario())
    # Three ahead (two running, one waiting) x ~0.6 s over two places: ~0.9 s, rounded up to 1;
    # the moving average has only the 0.6 s request and the three short ones.
    assert measured is not None and measured > 0.2
    assert retry_after == "1"


def test_retry_after_grows_with_the_measured_time() -> None:
    admission = Admission(max_active=1, max_queued=4)
    admission.service_seconds = 2.5
    assert admission.retry_after() == 1  # nothing ahead: the least
    admission._places()  # the limiter, made as the first request would
    limiter = admission._limiter
    assert limiter is not None

    async def scenario() -> int:
        gate = asyncio.Event()

        async def request() -> None:
            async with admission.admit("op"):
                await gate.wait()

        tasks = [asyncio.create_task(request()) for _ in range(3)]
        await _until(lambda: admission.active == 1 and admission.waiting == 2)
        seconds = admission.retry_after()
        gate.set()
        await asyncio.gather(*tasks)
        return seconds

    # Measured 2.5 s per request, but each of the three finishing sets the average lower: read
    # while they hold their places, it is 3 x 2.5 s over one place.
    assert asyncio.run(scenario()) == 8


def test_settings_bound_the_values() -> None:
    assert Settings().max_active_requests == 8
    assert Settings().max_queued_requests == 0
    with pytest.raises(ValidationError):
        Settings(SYNTHSTACK_MAX_ACTIVE_REQUESTS=0)
    with pytest.raises(ValidationError):
        Settings(SYNTHSTACK_MAX_QUEUED_REQUESTS=-1)


def test_django_threads_let_every_refusable_request_reach_the_core() -> None:
    assert django_threads(Settings()) == 8  # gunicorn's threads as before
    bounded = Settings(SYNTHSTACK_MAX_ACTIVE_REQUESTS=4, SYNTHSTACK_MAX_QUEUED_REQUESTS=16)
    assert django_threads(bounded) == 4 + 16 + 1
