"""What a configuration problem is: a key, what is wrong, how to fix it; ConfigError carries them all.

Apart from the loader, so a command that reads its settings from the snapshot (config/snapshot.py)
and the state store (daemon/state.py) can raise and print one without importing pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    key: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}: {self.what}. Fix: {self.fix}"


class ConfigError(Exception):
    """The configuration has one or more problems; each names its key and a fix."""

    retryable: bool | None = None  # the daemon's job policy: stop (no retry or skip fixes a config)

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = problems
        self.source = source
        head = f"{len(problems)} problem(s) in {source or 'the configuration'}"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))
