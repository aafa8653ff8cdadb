"""The provider: one OpenAI-compatible endpoint on the wire. The only module that imports `openai`.

    Provider.send(Request) -> Reply            never raises for what the endpoint did; the outcome says it

    outcome     meaning                                          money (agents.llm.meter)
    ---------   ----------------------------------------------   -----------------------------------
    not_sent    provably never left: connect refused, DNS,       release the hold
                connect or pool timeout
    answered    HTTP 200, body read: text, usage (None when      commit the usage priced; none: the
                the server reported none), finish_reason         held worst case
    rejected    an error status with the server's verdict:       commit the usage it reports, else
                any 4xx; a 5xx that reports usage                release (refused before generation)
    ambiguous   left, and no verdict came back: read timeout,    book the held worst case (a later
                reset mid-reply, 5xx without usage, a 200         usage report corrects it)
                whose body cannot be read

Every Reply carries status, retry_after (seconds from retry-after-ms or Retry-After, read by
kernel.http; the router caps it further) and error_class (the SDK's exception class name, e.g.
RateLimitError).
Cancellation (asyncio.CancelledError) passes through: the caller cannot know, so it is ambiguous.

    OpenAIProvider(client)           wraps one AsyncOpenAI (SDK retries off: the router retries,
                                     so that every attempt is reserved and metered)
    clients_for(agents)              one AsyncOpenAI per base_url; built by daemon/ only
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import httpx2
import openai

from agents.protocol import Usage
from config.settings import EMBEDDED, ROLES, AgentsSettings
from kernel.http import retry_after_from

NOT_SENT, ANSWERED, REJECTED, AMBIGUOUS = "not_sent", "answered", "rejected", "ambiguous"
NO_KEY = "sk-no-key"  # local OpenAI-compatible servers accept any key
# Transport errors raised before a byte of the request could reach the server (httpx and httpx2 alike).
_NEVER_LEFT = tuple(
    getattr(module, name)
    for module in (httpx, httpx2)
    for name in ("ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol", "LocalProtocolError")
)


@dataclass(frozen=True)
class Request:
    """One chat completion to send, in wire terms."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float = 0.0
    timeout: float | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None


@dataclass(frozen=True)
class Reply:
    """What became of one request: the outcome class and whatever the endpoint told us."""

    outcome: str  # not_sent | answered | rejected | ambiguous
    text: str = ""
    usage: Usage | None = None  # None: not reported
    finish_reason: str | None = None
    status: int | None = None
    retry_after: float | None = None
    error_class: str | None = None


class Provider(Protocol):
    """Sends one request to one endpoint."""

    async def send(self, request: Request) -> Reply:
        """Send it once (no retries) and classify what happened."""
        ...


class OpenAIProvider:
    """A Provider over an AsyncOpenAI client (or anything with `chat.completions.create`)."""

    def __init__(self, client: Any):
        self.client = client

    async def send(self, request: Request) -> Reply:
        """Send it once (no retries) and classify what happened."""
        kwargs: dict[str, Any] = {
            "model": request.model, "messages": request.messages, "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.timeout is not None:
            kwargs["timeout"] = request.timeout
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        try:
            resp = await self.client.chat.completions.create(**kwargs)
            return _answered(resp)
        except openai.APIStatusError as exc:
            usage = _usage_from_error(exc)
            status = exc.status_code
            # A 5xx may come after the model generated (a proxy timing out, a crash mid-reply): without
            # a usage report nothing proves it was not billed.
            outcome = AMBIGUOUS if status >= 500 and usage is None else REJECTED
            return Reply(outcome, usage=usage, status=status, retry_after=retry_after_from(exc.response.headers),
                         error_class=type(exc).__name__)
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            outcome = NOT_SENT if isinstance(exc.__cause__, _NEVER_LEFT) else AMBIGUOUS
            return Reply(outcome, error_class=type(exc).__name__)
        except (ValueError, openai.APIResponseValidationError) as exc:
            # A 200 whose body is not a chat completion: served, but what it used cannot be read.
            return Reply(AMBIGUOUS, status=200, error_class=type(exc).__name__)


def _answered(resp: Any) -> Reply:
    choice = resp.choices[0] if resp.choices else None
    text = (choice.message.content or "") if choice else ""
    finish = choice.finish_reason if choice else None
    u = resp.usage
    usage = Usage(int(u.prompt_tokens or 0), int(u.completion_tokens or 0)) if u is not None else None
    return Reply(ANSWERED, text=text, usage=usage, finish_reason=finish, status=200)


def _usage_from_error(exc: openai.APIStatusError) -> Usage | None:
    """Usage an error response reports (top level or inside "error"), if any."""
    try:
        body = exc.response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    usage = body.get("usage")
    if usage is None and isinstance(body.get("error"), dict):
        usage = body["error"].get("usage")
    if not isinstance(usage, dict):
        return None
    try:
        return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


def public_url(url: str) -> str:
    """A URL without credentials or query, safe for logs and rows."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def clients_for(agents: AgentsSettings, **client_kwargs: Any) -> dict[str, openai.AsyncOpenAI]:
    """One AsyncOpenAI per base_url of every role and fallback (keyed by base_url), SDK retries off.

    Called by daemon/ only, with settings whose "embedded" base_urls were already rewritten
    (agents.llm.embedded.resolve_embedded). An endpoint's key is the first one configured for it.
    """
    keys: dict[str, str | None] = {}
    for role in ROLES:
        cfg = agents.role(role)
        _add(keys, cfg.base_url, cfg.api_key_value)
        for f in cfg.fallbacks:
            _add(keys, f.base_url, f.api_key_value)
    return {
        url: openai.AsyncOpenAI(base_url=url, api_key=key or NO_KEY, max_retries=0, **client_kwargs)
        for url, key in keys.items()
    }


def _add(keys: dict[str, str | None], url: str, secret: Any) -> None:
    if url == EMBEDDED:
        raise ValueError('base_url "embedded" must be resolved first (agents.llm.embedded.resolve_embedded)')
    value = secret.get_secret_value() if secret is not None else None
    if keys.get(url) is None:
        keys[url] = value
