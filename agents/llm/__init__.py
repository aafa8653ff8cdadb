"""The metered LLM client: every call reserved, posted from reported usage, logged and traced."""

from agents.llm.breaker import Breaker
from agents.llm.clients import clients_for
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
