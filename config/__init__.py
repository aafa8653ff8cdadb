"""Settings: schema, loader, example and checks. Imports only kernel/ of selfpub (money for amounts).

The names below are imported on first use (PEP 562), so `import config.snapshot` or
`config.problems` (a read-only command's start) does not import the loader and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.loader import ConfigError, Problem, check_config, find_config_path, load_settings, read_secret
    from config.settings import EMBEDDED, EMBEDDED_MODEL, ROLES, Settings

_HOME = {
    "EMBEDDED": "config.settings",
    "EMBEDDED_MODEL": "config.settings",
    "ROLES": "config.settings",
    "Settings": "config.settings",
    "ConfigError": "config.problems",
    "Problem": "config.problems",
    "check_config": "config.loader",
    "find_config_path": "config.dirs",
    "load_settings": "config.loader",
    "read_secret": "config.loader",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whatever the named module holds
    if name not in _HOME:
        raise AttributeError(f"module 'config' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value
