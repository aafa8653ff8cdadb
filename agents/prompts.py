"""Prompts are data files (agents/prompts/<name>.yaml), not strings in code.

A prompt file holds `system` (the instructions) and `user` (a template whose
`{placeholders}` are filled by `render`). Untrusted text (feed items, briefs
built from them) is only ever put inside `data_section(...)`, never into the
instruction part, and the section markers are removed from the data itself so
a feed item cannot close its own section.

Errors:
    PromptError   retryable None (a broken prompt file: the daemon stops); missing file, key or placeholder
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

PROMPTS_DIR = Path(__file__).parent / "prompts"
DATA_OPEN = "<<<DATA {name}>>>"
DATA_CLOSE = "<<<END DATA {name}>>>"


class PromptError(Exception):
    """A prompt file is missing or malformed, or a placeholder was not given."""

    retryable: bool | None = None


@dataclass(frozen=True)
class Prompt:
    """One loaded prompt: instructions and a user template."""

    name: str
    system: str
    user: str

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with the user template filled in."""
        try:
            user = self.user.format_map(values)
        except KeyError as exc:
            raise PromptError(f"prompt {self.name!r} needs placeholder {exc.args[0]!r}") from None
        return [{"role": "system", "content": self.system.strip()}, {"role": "user", "content": user.strip()}]


@lru_cache(maxsize=32)
def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    """Load agents/prompts/<name>.yaml (cached)."""
    path = directory / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"no prompt file {path}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("system"), str) or not isinstance(raw.get("user"), str):
        raise PromptError(f"{path} must define 'system' and 'user' strings")
    return Prompt(name, raw["system"], raw["user"])


def data_section(name: str, text: str) -> str:
    """Wrap untrusted text in a named data section it cannot break out of."""
    cleaned = text.replace("<<<", "‹‹‹").replace(">>>", "›››")
    return f"{DATA_OPEN.format(name=name)}\n{cleaned.strip()}\n{DATA_CLOSE.format(name=name)}"
