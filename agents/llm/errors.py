"""Errors of the metered LLM client.

`retryable` (the orchestrator and the daemon's job policy read it): True = the task waits and the
job runs again at its next tick; None = the orchestrator counts an attempt, and one that reaches the
daemon stops it (a bug or a config fault: no retry or skip would fix it).

    LLMError                   retryable None
     ├── PriceMissing          a model has no price: config error, refused before any call
     ├── UnknownRole           a role that agents settings do not define
     ├── LLMUnavailable        True: every endpoint failed (429, 5xx, timeouts) or its circuit is open
     ├── LLMRequestRejected    the endpoint refused the request (400, 401, 403, 404, 422): not retried
     ├── StructuredOutputError the reply did not validate, also after one repair call
     └── SpendRefused          False: the endpoint asked for an x402 payment the spend policy refused
                               (reason: disabled, network, asset, payee, scheme, timeout,
                               reservation, daily_cap, outstanding); nothing was signed, the hold is released
    ledger.BudgetExceeded      passes through unchanged (limit: paused, available, daily_cap,
                               per_cycle_cap, role_calls, role_tokens)
    ledger.budget.HoldClosed   passes through: the hold expired before its request left; nothing was sent

Errors carry the role, model and task id; never an API key or prompt text. An error raised by the repair
call of an invalid reply (`repairing`) also carries .invalid_reply_cost, the ucr that reply cost: the
model answered and was paid, so the orchestrator counts the attempt even when the error is retryable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class LLMError(Exception):
    """Base of every metered-client error."""

    retryable: bool | None = None
    invalid_reply_cost: int | None = None  # set by `repairing`: the repaired reply was answered, and cost this (ucr)

    def __init__(self, message: str, *, role: str | None = None, model: str | None = None, task_id: str | None = None):
        self.role = role
        self.model = model
        self.task_id = task_id
        super().__init__(message)


class PriceMissing(LLMError):
    """A call to a model without a configured price is refused."""

    def __init__(self, model: str, *, role: str | None = None, task_id: str | None = None):
        super().__init__(
            f"no price for model {model!r}: add [prices.{model!r}] with input_per_million and "
            f"output_per_million (credits per 1M tokens) to the config",
            role=role, model=model, task_id=task_id,
        )


class UnknownRole(LLMError):
    """The role is not one of the configured agents."""


class LLMUnavailable(LLMError):
    """Every endpoint of the role failed with a transient error; try again later."""

    retryable = True

    def __init__(self, message: str, *, last_error: str | None = None, **kw):  # noqa: ANN003
        self.last_error = last_error
        super().__init__(message, **kw)


class LLMRequestRejected(LLMError):
    """The endpoint refused the request itself (4xx other than 408/409/429): retrying will not help."""

    def __init__(self, message: str, *, status_code: int | None = None, **kw):  # noqa: ANN003
        self.status_code = status_code
        super().__init__(message, **kw)


class StructuredOutputError(LLMError):
    """The model's reply did not match the response model, even after one repair call."""

    def __init__(self, message: str, *, errors: list[str], cost: int = 0, **kw):  # noqa: ANN003
        self.errors = errors
        self.cost = cost
        super().__init__(message, **kw)


class SpendRefused(LLMError):
    """The spend policy refused an x402 payment: nothing was signed, and retrying will not change its mind."""

    retryable = False

    def __init__(self, message: str, *, reason: str, **kw):  # noqa: ANN003
        self.reason = reason
        super().__init__(message, **kw)


@contextlib.contextmanager
def repairing(cost: int) -> Iterator[None]:
    """Around the repair call of an invalid reply that cost `cost` ucr: an LLMError raised in it carries that cost."""
    try:
        yield
    except LLMError as exc:
        exc.invalid_reply_cost = (exc.invalid_reply_cost or 0) + cost
        raise
