"""The metered LLM client: provider -> router -> meter, plus structured output (see agents/llm/metered.py)."""

from agents.llm.breaker import Breaker
from agents.llm.errors import (
    LLMError,
    LLMRequestRejected,
    LLMUnavailable,
    PriceMissing,
    StructuredOutputError,
    UnknownRole,
)
from agents.llm.metered import JSON_OBJECT, JSON_SCHEMA, MeteredLLM, Route, public_url
from agents.llm.pricing import cost, estimate_prompt_tokens
from agents.llm.provider import clients_for

__all__ = [
    "JSON_OBJECT",
    "JSON_SCHEMA",
    "Breaker",
    "LLMError",
    "LLMRequestRejected",
    "LLMUnavailable",
    "MeteredLLM",
    "PriceMissing",
    "Route",
    "StructuredOutputError",
    "UnknownRole",
    "clients_for",
    "cost",
    "estimate_prompt_tokens",
    "public_url",
]
