"""Build one AsyncOpenAI client per endpoint from (resolved) agents settings.

Called by daemon/ only, with settings whose "embedded" base_urls were already
rewritten (agents.embedded.resolve_embedded). The SDK's own retries are off:
MeteredLLM retries, so that every attempt is reserved and posted.
"""

from __future__ import annotations

from typing import Any

import openai

from config.settings import ROLES, EMBEDDED, AgentsSettings

NO_KEY = "sk-no-key"  # local OpenAI-compatible servers accept any key


def clients_for(agents: AgentsSettings, **client_kwargs: Any) -> dict[str, openai.AsyncOpenAI]:
    """One AsyncOpenAI per base_url of every role and fallback (keyed by base_url).

    An endpoint's key is the first one configured for that base_url.
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
        raise ValueError('base_url "embedded" must be resolved first (agents.embedded.resolve_embedded)')
    value = secret.get_secret_value() if secret is not None else None
    if keys.get(url) is None:
        keys[url] = value
