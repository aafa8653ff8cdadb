"""Settings: schema, loader, example and checks. Imports only kernel/ of selfpub (money for amounts)."""

from config.loader import ConfigError, Problem, check_config, find_config_path, load_settings, read_secret
from config.settings import EMBEDDED, EMBEDDED_MODEL, ROLES, Settings

__all__ = [
    "EMBEDDED",
    "EMBEDDED_MODEL",
    "ROLES",
    "ConfigError",
    "Problem",
    "Settings",
    "check_config",
    "find_config_path",
    "load_settings",
    "read_secret",
]
