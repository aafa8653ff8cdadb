"""A fake Provider (agents.llm.provider): scripted Replies, the requests seen, and what it "served".

    fake = FakeProvider()
    fake.enqueue(answered("hi", 12, 3))                     delivered: billed (12, 3)
    fake.enqueue(ambiguous(), served=Usage(40, 20))         generated and billed, reply lost on the way
    fake.enqueue(not_sent())                                never left: nothing billed
    llm = MeteredLLM(agents, prices, budget, {url: fake})   a Provider is used as it is

`served` is the provider's own tally (its invoice): every usage it generated, delivered or not.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.llm.provider import AMBIGUOUS, ANSWERED, NOT_SENT, REJECTED, Reply, Request
from agents.protocol import Usage


def answered(text: str = "ok", input_tokens: int = 10, output_tokens: int = 5, *, usage: bool = True) -> Reply:
    """A delivered answer (usage reported unless usage=False)."""
    return Reply(ANSWERED, text=text, usage=Usage(input_tokens, output_tokens) if usage else None,
                 finish_reason="stop", status=200)


def rejected(status: int, usage: Usage | None = None, retry_after: float | None = None) -> Reply:
    """An error status (with the usage the body reports, if any)."""
    return Reply(REJECTED, usage=usage, status=status, retry_after=retry_after, error_class=f"HTTP{status}")


def ambiguous(error_class: str = "APITimeoutError", status: int | None = None) -> Reply:
    """Sent, no verdict back."""
    return Reply(AMBIGUOUS, status=status, error_class=error_class)


def not_sent(error_class: str = "APIConnectionError") -> Reply:
    """Provably never left."""
    return Reply(NOT_SENT, error_class=error_class)


@dataclass
class _Scripted:
    reply: Reply | Callable[[Request], Reply]
    served: Usage | None


@dataclass
class FakeProvider:
    """Answers from a queue, then with `default`; records requests; tallies what it served."""

    default: Reply = field(default_factory=answered)
    requests: list[Request] = field(default_factory=list)
    served: list[Usage] = field(default_factory=list)
    _queue: deque = field(default_factory=deque)

    def enqueue(self, reply: Reply | Callable[[Request], Reply], *, served: Usage | None = None) -> FakeProvider:
        """Queue one reply; `served` is what generating it cost when the reply itself does not say."""
        self._queue.append(_Scripted(reply, served))
        return self

    async def send(self, request: Request) -> Reply:
        """Serve the next scripted reply."""
        self.requests.append(request)
        s = self._queue.popleft() if self._queue else _Scripted(self.default, None)
        reply = s.reply(request) if callable(s.reply) else s.reply
        billed = s.served if s.served is not None else (
            reply.usage if reply.outcome in (ANSWERED, REJECTED) else None)
        if billed is not None:
            self.served.append(billed)
        return reply
