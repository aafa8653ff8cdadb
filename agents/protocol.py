"""The seam every agent calls: `LLM.complete(...)`. The metered client and test fakes implement it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Usage:
    """Tokens the provider reported for one call."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Completion:
    """One finished call: text, parsed object (when a response_model was asked), usage, cost in ucr."""

    text: str
    usage: Usage
    cost: int  # micro-credits posted to the ledger for this call
    model: str
    endpoint: str = ""
    parsed: Any = None
    calls: int = 1  # >1 when a repair call was made
    meta: dict[str, Any] = field(default_factory=dict)


class LLM(Protocol):
    """A metered chat-completion client, one per daemon, shared by every role."""

    async def complete(
        self,
        role: str,
        messages: Sequence[dict[str, str]],
        *,
        response_model: type[BaseModel] | None = None,
        max_tokens: int | None = None,
        task_id: str | None = None,
        cycle_id: str | None = None,
    ) -> Completion:
        """Reserve, call, post the actual cost; parse into response_model when given."""
        ...
