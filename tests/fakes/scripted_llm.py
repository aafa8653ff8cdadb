"""A scripted fake of agents.protocol.LLM: enqueue replies per role, read the call history.

With a ledger Budget it also meters like the real client: it reserves the worst
case (prompt estimate + max_tokens at a flat price), posts the reported usage
and releases the rest, so budget caps are exercised for real.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agents.protocol import Completion, Usage

Reply = BaseModel | dict | str | Exception | Callable[["Call"], Any]


@dataclass
class Call:
    """One call the fake received."""

    role: str
    messages: list[dict[str, str]]
    response_model: type[BaseModel] | None
    max_tokens: int | None
    task_id: str | None
    cycle_id: str | None

    @property
    def prompt(self) -> str:
        """All message contents joined (for assertions)."""
        return "\n".join(m["content"] for m in self.messages)


@dataclass
class ScriptedLLM:
    """Replies come from per-role queues, else from `default[role]` (reused), else an error."""

    budget: Any = None  # ledger.Budget: meter every call when given
    usage: Usage = Usage(100, 50)  # reported for every call
    price_in: int = 1_000  # ucr per token (flat, to make costs easy to reason about)
    price_out: int = 2_000
    default: dict[str, Reply] = field(default_factory=dict)
    history: list[Call] = field(default_factory=list)
    queues: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))

    def enqueue(self, role: str, *replies: Reply) -> ScriptedLLM:
        """Queue replies for a role, served in order."""
        self.queues[role].extend(replies)
        return self

    def calls(self, role: str | None = None) -> list[Call]:
        """The history, optionally of one role."""
        return [c for c in self.history if role is None or c.role == role]

    def cost_of(self, usage: Usage) -> int:
        """What the fake charges for a usage."""
        return usage.input_tokens * self.price_in + usage.output_tokens * self.price_out

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
        """Serve the next scripted reply for `role`."""
        call = Call(role, [dict(m) for m in messages], response_model, max_tokens, task_id, cycle_id)
        hold = None
        if self.budget is not None:
            worst = self.usage.input_tokens * self.price_in + (max_tokens or self.usage.output_tokens) * self.price_out
            worst = max(worst, self.cost_of(self.usage))
            hold = self.budget.reserve(role, worst, model="scripted", provider="scripted", cycle_id=cycle_id, task_id=task_id)
        self.history.append(call)
        if self.queues[role]:
            reply = self.queues[role].popleft()
        elif role in self.default:
            reply = self.default[role]
        else:
            if hold is not None:
                self.budget.release(hold)
            raise AssertionError(f"ScriptedLLM: no reply scripted for role {role!r}")
        if callable(reply) and not isinstance(reply, type | BaseModel):
            reply = reply(call)
        if isinstance(reply, Exception):
            if hold is not None:
                self.budget.release(hold)
            raise reply
        if isinstance(reply, BaseModel):
            text = reply.model_dump_json()
        elif isinstance(reply, dict):
            text = json.dumps(reply)
        else:
            text = str(reply)
        parsed = response_model.model_validate_json(text) if response_model is not None else None
        cost = self.cost_of(self.usage)
        if hold is not None:
            self.budget.commit(hold, cost, provider="scripted")
        return Completion(text=text, usage=self.usage, cost=cost, model="scripted", parsed=parsed)


# -- sample messages for agent tests ---------------------------------------------------

SOURCE = "https://news.example.org/rust-2026"


def sample_item(n: int = 1, *, feed: str = "https://news.example.org/feed.xml", tags: tuple[str, ...] = ("rust",),
                summary: str = "The Rust project shipped a new edition with faster compile times.") -> Any:
    """A feed item (FeedItem) whose URL is unique per n."""
    from agents.messages import FeedItem

    url = SOURCE if n == 1 else f"https://news.example.org/item-{n}"
    return FeedItem(feed_url=feed, url=url, title=f"Rust news {n}", summary=summary, content_hash=f"h{n}-{feed}",
                    tags=tags)


def sample_brief(sources: tuple[str, ...] = (SOURCE,)) -> Any:
    """A Brief citing `sources`."""
    from agents.messages import Brief, KeyPoint

    return Brief(
        topic="Rust 2026 edition", angle="What changes for everyday Rust users",
        key_points=tuple(KeyPoint(claim="Compile times dropped by a fifth", source_url=s) for s in sources),
        sources=sources,
    )


def writer_reply(**over: Any) -> dict:
    """A well-formed writer answer linking the sample source."""
    reply = {
        "title": "The Rust 2026 edition: faster builds for everyone",
        "body_markdown": f"Rust's new edition cuts compile times ([announcement]({SOURCE})).\n\nMore below.",
        "tags": ["rust", "programming"],
        "description": "What the Rust 2026 edition changes.",
        "bsky_text": "Rust 2026 is out and builds are faster.",
    }
    reply.update(over)
    return reply


def research_reply(source: str = SOURCE) -> Callable[[Call], Any]:
    """A research answer (for the real ResearchAgent's response model) built from the call itself."""

    def reply(call: Call) -> Any:
        fields = call.response_model.model_fields if call.response_model else {}
        if "key_points" in fields and "sources" in fields:
            return {"topic": "Rust 2026 edition", "angle": "faster builds",
                    "key_points": [{"claim": "Compile times dropped", "source_url": source}], "sources": [source]}
        return {"topic": "Rust 2026 edition", "angle": "faster builds",
                "key_points": [{"claim": "Compile times dropped", "source": source}]}

    return reply


class BriefingResearcher:
    """A research step for orchestrator unit tests: one `research` call whose reply is a Brief."""

    def __init__(self, llm: Any):
        self.llm = llm

    async def brief(self, items: list, *, task_id: str | None = None, cycle_id: str | None = None) -> Any:
        """Ask the LLM (role research) for a Brief."""
        from agents.messages import Brief

        c = await self.llm.complete("research", [{"role": "user", "content": items[0].title}], response_model=Brief,
                                    task_id=task_id, cycle_id=cycle_id)
        return c.parsed


class ListFeed:
    """A feed source serving fixed candidates once each."""

    def __init__(self, candidates: Sequence[Any] = ()):
        self.pending = list(candidates)
        self.covered: list[Any] = []

    def add(self, *candidates: Any) -> None:
        """Offer more candidates."""
        self.pending.extend(candidates)

    async def candidates(self) -> list[Any]:
        """The pending candidates (each offered once)."""
        out, self.pending = self.pending, []
        return out

    def mark_covered(self, item: Any) -> None:
        """Remember covered items."""
        self.covered.append(item)


class RecordingChannel:
    """A publish channel that records posts; `fail_with` raises instead (once per entry)."""

    def __init__(self) -> None:
        self.posts: list[Any] = []
        self.fail_with: list[Exception] = []

    async def publish_all(self, post: Any) -> list[Any]:
        """Record the post and answer as one local platform."""
        from publishers.protocol import Published

        if self.fail_with:
            raise self.fail_with.pop(0)
        self.posts.append(post)
        return [Published(platform="local", remote_id=post.key, url=f"file:///outbox/{post.key}.md")]
