"""Scripted fakes for agent tests: replies per role, the call history; metering stays with the real client.

    ScriptedLLM(cost=...)               agents.protocol.LLM itself, for one agent under test (writer,
                                        critic): no budget; each Completion reports `cost`
    llm, provider = scripted_metered(budget, calllog)
                                        the real MeteredLLM (router, meter, call log) over a
                                        ScriptedProvider (agents.llm.provider.Provider): every role
                                        on SCRIPTED_URL with its own model "scripted-<role>", so the
                                        provider knows the role; money as the daemon books it

Replies (both): a pydantic model or dict (sent as JSON), a str, a callable of the Call, or an
Exception (raised). The provider also takes a provider Reply (tests/fakes/provider.py: rejected(403),
ambiguous(), ...), which the router and meter then handle like any endpoint's.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agents.llm.provider import ANSWERED, Reply as ProviderReply, Request
from agents.protocol import Completion, Usage
from config.settings import AgentSettings, AgentsSettings, ModelPrice

Reply = BaseModel | dict | str | Exception | ProviderReply | Callable[["Call"], Any]

SCRIPTED_URL = "http://scripted-llm.test/v1"
# 50 and 3600 credits per 1M tokens: a call reporting the default usage (400, 50) costs 0.2 credit.
SCRIPTED_PRICE = ModelPrice(input_per_million="50", output_per_million="3600", provider="scripted")
SCRIPTED_USAGE = Usage(400, 50)
SCRIPTED_MAX_TOKENS = 64


def scripted_model(role: str) -> str:
    """The model a role calls through the scripted provider."""
    return f"scripted-{role}"


def scripted_agents(max_tokens: int = SCRIPTED_MAX_TOKENS) -> AgentsSettings:
    """Agents settings with every role on the scripted endpoint, each with its own model."""
    roles = {r: AgentSettings(base_url=SCRIPTED_URL, model=scripted_model(r), max_tokens=max_tokens)
             for r in ("orchestrator", "research", "writer", "critic")}
    return AgentsSettings(**roles)


def scripted_prices() -> dict[str, ModelPrice]:
    """SCRIPTED_PRICE for every role's model."""
    return {scripted_model(r): SCRIPTED_PRICE for r in ("orchestrator", "research", "writer", "critic")}


@dataclass
class Call:
    """One call the fake received (task and cycle ids only where the fake sees them: ScriptedLLM)."""

    role: str
    messages: list[dict[str, str]]
    response_model: type[BaseModel] | None = None
    max_tokens: int | None = None
    task_id: str | None = None
    cycle_id: str | None = None

    @property
    def prompt(self) -> str:
        """All message contents joined (for assertions)."""
        return "\n".join(m["content"] for m in self.messages)


@dataclass
class Script:
    """Replies from per-role queues, else from `default[role]` (reused), else an AssertionError."""

    default: dict[str, Reply] = field(default_factory=dict)
    history: list[Call] = field(default_factory=list)
    queues: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))

    def enqueue(self, role: str, *replies: Reply) -> Script:
        """Queue replies for a role, served in order."""
        self.queues[role].extend(replies)
        return self

    def calls(self, role: str | None = None) -> list[Call]:
        """The history, optionally of one role."""
        return [c for c in self.history if role is None or c.role == role]

    def next(self, call: Call) -> Any:  # noqa: ANN401
        """Record the call and return its scripted reply (an Exception is raised)."""
        self.history.append(call)
        if self.queues[call.role]:
            reply = self.queues[call.role].popleft()
        elif call.role in self.default:
            reply = self.default[call.role]
        else:
            raise AssertionError(f"{type(self).__name__}: no reply scripted for role {call.role!r}")
        if callable(reply) and not isinstance(reply, type | BaseModel):
            reply = reply(call)
        if isinstance(reply, Exception):
            raise reply
        return reply


def as_text(reply: Any) -> str:  # noqa: ANN401
    """The wire text of a scripted reply."""
    if isinstance(reply, BaseModel):
        return reply.model_dump_json()
    if isinstance(reply, dict):
        return json.dumps(reply)
    return str(reply)


@dataclass
class ScriptedLLM(Script):
    """agents.protocol.LLM for one agent under test: scripted text, parsed into response_model; no money."""

    usage: Usage = SCRIPTED_USAGE  # reported for every call
    cost: int = 0  # ucr each Completion reports (nothing is booked: no budget here)

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
        text = as_text(self.next(Call(role, [dict(m) for m in messages], response_model, max_tokens, task_id,
                                      cycle_id)))
        parsed = response_model.model_validate_json(text) if response_model is not None else None
        return Completion(text=text, usage=self.usage, cost=self.cost, model="scripted", parsed=parsed)


@dataclass
class ScriptedProvider(Script):
    """A Provider (agents.llm.provider) answering each role's model from the script, reporting `usage`."""

    usage: Usage = SCRIPTED_USAGE

    async def send(self, request: Request) -> ProviderReply:
        """Answer one request with the next reply of the role whose model it names."""
        role = request.model.removeprefix("scripted-")
        reply = self.next(Call(role, [dict(m) for m in request.messages], max_tokens=request.max_tokens))
        if isinstance(reply, ProviderReply):
            return reply
        return ProviderReply(ANSWERED, text=as_text(reply), usage=self.usage, finish_reason="stop", status=200)


def scripted_metered(budget: Any, calllog: Any = None, *, agents: AgentsSettings | None = None,  # noqa: ANN401
                     usage: Usage = SCRIPTED_USAGE, **kw: Any) -> tuple[Any, ScriptedProvider]:  # noqa: ANN401
    """The real MeteredLLM over a ScriptedProvider, with SCRIPTED_PRICE for every role's model."""
    from agents.llm import MeteredLLM

    async def no_sleep(_: float) -> None:
        return None

    provider = ScriptedProvider(usage=usage)
    llm = MeteredLLM(agents or scripted_agents(), scripted_prices(), budget, {SCRIPTED_URL: provider},
                     log_to=calllog, sleep=no_sleep, **kw)
    return llm, provider


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


def article_body(source: str = SOURCE) -> str:
    """The prose of a realistic short article on the sample brief (over the quality floor's word and sentence
    minimums, covering its key point, citing `source` inline); no Sources section or disclosure: the writer adds them."""
    return (
        f"Rust's 2026 edition is out, and compile times dropped by a fifth for most projects "
        f"([the announcement]({source})).\n\n"
        "The release notes say the gain comes from a reworked incremental cache. Teams with large workspaces see "
        "the biggest change, because fewer crates are rebuilt after a small edit. Smaller projects still finish "
        "their builds noticeably sooner than before.\n\n"
        "Upgrading is a one-line change in Cargo.toml, and the old edition keeps working. The project recommends "
        "trying the new edition in continuous integration first, then switching local builds once the pipeline "
        "is green. Faster feedback from the compiler is the change everyday Rust users will notice first."
    )


def sample_draft(brief: Any = None, **over: Any) -> Any:
    """A Draft that passes every deterministic check for `brief` (default sample_brief()): the writer's own
    post-processing of `writer_reply()`, so sources section, disclosure and Bluesky text are as produced."""
    from agents.writer import WriterOutput, finish_draft

    brief = brief or sample_brief()
    reply = writer_reply(body_markdown=article_body(brief.sources[0] if brief.sources else SOURCE))
    draft = finish_draft(WriterOutput.model_validate(reply), brief)
    return draft.model_copy(update=over) if over else draft


def writer_reply(**over: Any) -> dict:
    """A well-formed writer answer linking the sample source."""
    reply = {
        "title": "The Rust 2026 edition: faster builds for everyone",
        "body_markdown": article_body(),
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
