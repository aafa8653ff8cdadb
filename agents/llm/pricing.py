"""Token estimates and prices in integer micro-credits (never floats); the one home of a call's worst case.

A price is ucr per 1M tokens, so the cost of n tokens is ceil(n * price / 1e6):
rounding always goes up, to the micro-credit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from config.settings import ModelPrice

PER_MILLION = 1_000_000
# An upper-bound estimate without a tokenizer: BPE tokens average 3-4 bytes of
# English; 2 bytes per token over-reserves for any text we send.
BYTES_PER_TOKEN = 2
MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators of a chat template
REPLY_PRIMING_TOKENS = 40  # the assistant header, plus a default system prompt some templates insert
# A step planned before its prompt exists (the orchestrator's worst case per item): a generous prompt
# of one agent call. The meter reserves from the real prompt when the call is made.
PLANNING_PROMPT_TOKENS = 2_000


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling division of non-negative a by positive b."""
    return -(-a // b)


def estimate_prompt_tokens(messages: Sequence[Mapping[str, str]], extra: str = "") -> int:
    """An upper bound on the prompt tokens of a chat request."""
    total = REPLY_PRIMING_TOKENS + ceil_div(len(extra.encode()), BYTES_PER_TOKEN)
    for m in messages:
        text = str(m.get("content") or "") + str(m.get("role") or "")
        total += MESSAGE_OVERHEAD_TOKENS + ceil_div(len(text.encode()), BYTES_PER_TOKEN)
    return total


def cost(price: ModelPrice, input_tokens: int, output_tokens: int) -> int:
    """What a call costs in ucr, rounded up once over the sum."""
    return ceil_div(input_tokens * price.input_per_million + output_tokens * price.output_per_million, PER_MILLION)


def planned_cost(price: ModelPrice, max_tokens: int) -> int:
    """The worst case of a call planned before its prompt is written: PLANNING_PROMPT_TOKENS plus max_tokens."""
    return cost(price, PLANNING_PROMPT_TOKENS, max_tokens)


def max_output_within(price: ModelPrice, input_tokens: int, room: int) -> int:
    """The most completion tokens whose worst-case cost, with the prompt, fits in `room` ucr."""
    if price.output_per_million == 0:
        return 1 << 30 if cost(price, input_tokens, 0) <= room else 0
    left = room * PER_MILLION - input_tokens * price.input_per_million
    return max(left // price.output_per_million, 0)


def schema_text(schema: Mapping[str, object] | None) -> str:
    """The JSON text of a schema, for the prompt estimate."""
    return json.dumps(schema, separators=(",", ":")) if schema else ""
