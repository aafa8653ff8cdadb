"""Run a job's sync call off the event loop: in a daemon thread, with the caller's context.

    service.py ──┐
    http.py ─────┼──> threads.py   (imports nothing of ours: no circle between service and http)
    wiring.py ───┘
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Callable
from typing import Any


async def call_job(fn: Callable[..., Any], *args: Any) -> Any:  # noqa: ANN401 - whatever the job returns
    """Await an async job; run a sync one in a daemon thread (so a hung call never blocks exit)."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
        return await fn(*args)
    result = await in_thread(fn, *args)
    if inspect.isawaitable(result):
        return await result
    return result


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:  # noqa: ANN401 - whatever fn returns
    """Run fn in a daemon thread with the caller's context (tracing spans follow)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()
    ctx = contextvars.copy_context()

    def settle(setter: str, value: Any) -> None:  # noqa: ANN401
        if not future.done():
            getattr(future, setter)(value)

    def target() -> None:
        try:
            result = ctx.run(fn, *args)
        except BaseException as exc:  # handed to the awaiting task
            outcome = ("set_exception", exc)
        else:
            outcome = ("set_result", result)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:
            pass  # the loop is gone: the service exited while this ran

    # A daemon thread: a call that hangs (a dead socket) never keeps the process from exiting.
    threading.Thread(target=target, name=f"job-{getattr(fn, '__name__', 'fn')}", daemon=True).start()
    return await future
