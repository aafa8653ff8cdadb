"""Structured output: the JSON schema a reply must match, how it is asked for, and the one repair prompt.

    response_model (pydantic)
      -> compact_schema()      $refs inlined, annotations dropped: what is sent, and billed as prompt
      -> response_format()     json_schema (OpenAI and most servers) | json_object + schema (llama-cpp)
    reply text
      -> validate()            (parsed, []) or (None, ["loc: message", ...]); fences stripped first
      -> repair_messages()     the conversation + the bad reply + what was wrong, for one more call

Nothing here sends or meters; the router asks for the repair call, the meter pays for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

JSON_SCHEMA = "json_schema"  # response_format {"type": "json_schema", ...} (OpenAI and most servers)
JSON_OBJECT = "json_object"  # JSON mode with a schema (llama-cpp-python's server)
# A 400/422 to a json_schema request from an endpoint that does not know it: switch it to JSON mode.
FORMAT_REFUSED_STATUS = frozenset({400, 422})

# Keywords that only annotate a schema: a grammar ignores them, a hosted provider bills them as prompt.
SCHEMA_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})
_NAME_MAPS = frozenset({"properties", "patternProperties"})  # their keys are field names, not keywords


def response_format(mode: str, name: str, schema: dict) -> dict[str, Any]:
    """The response_format field asking for JSON that matches `schema`, in the endpoint's dialect."""
    if mode == JSON_OBJECT:  # no name field here: the schema's title carries it
        return {"type": "json_object", "schema": {"title": name, **schema}}
    # strict is left out: false is the default, and every byte here is prompt tokens on a hosted provider.
    return {"type": "json_schema", "json_schema": {"name": name[:64] or "reply", "schema": schema}}


def compact_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema as sent: $refs inlined, annotations dropped, every constraint kept."""
    defs = schema.get("$defs") or {}
    recursive: set[str] = set()

    def walk(node: Any, path: tuple[str, ...]) -> Any:  # noqa: ANN401
        if isinstance(node, list):
            return [walk(n, path) for n in node]
        if not isinstance(node, Mapping):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            name = ref[8:]
            if name in path:  # a recursive model: keep this one reference and its definition
                recursive.add(name)
                return {"$ref": ref}
            merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged, (*path, name))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in SCHEMA_ANNOTATIONS or key == "$defs":
                continue
            if key in _NAME_MAPS and isinstance(value, Mapping):
                out[key] = {field: walk(sub, path) for field, sub in value.items()}
            else:
                out[key] = walk(value, path)
        return out

    out = walk(schema, ())
    kept: dict[str, Any] = {}
    while pending := sorted(recursive - kept.keys()):  # walking a definition may find another recursive one
        for name in pending:
            kept[name] = walk(defs[name], (name,))
    if kept:
        out["$defs"] = kept
    return out


def strip_fences(text: str) -> str:
    """The JSON inside a ```json fenced block, or the text itself."""
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t.strip()


def validate(model: type[BaseModel], text: str) -> tuple[BaseModel | None, list[str]]:
    """The reply parsed into `model`, or the list of what is wrong with it (locations and messages only)."""
    try:
        # strict=False: small models write raw newlines inside JSON strings; accept them.
        data = json.loads(strip_fences(text), strict=False)
    except ValueError as exc:
        return None, [f"(root): not JSON ({type(exc).__name__} at line {getattr(exc, 'lineno', '?')})"]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        # Locations and messages only: the offending input may be untrusted feed text.
        return None, [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors(include_input=False)]


def repair_prompt(errors: list[str]) -> str:
    """The user turn that shows the model what was wrong with its reply."""
    listed = "\n".join(f"- {e}" for e in errors[:10])
    return (
        "Your previous reply did not match the required JSON schema:\n"
        f"{listed}\n"
        "Reply again with only the corrected JSON object, no prose and no code fences."
    )


def repair_messages(messages: Sequence[dict[str, str]], reply: str, errors: list[str]) -> list[dict[str, str]]:
    """The conversation for the one repair call: the request, the bad reply, and what was wrong."""
    return [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": repair_prompt(errors)}]
