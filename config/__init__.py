"""Settings schema, loader and checks. Imports nothing else of selfpub."""

from config.loader import ConfigError, Problem, check_config, find_config_path, load_settings, read_secret
from config.money import UCR_PER_CREDIT, AmountError, format_credits, parse_credits
from config.settings import EMBEDDED, EMBEDDED_MODEL, ROLES, Settings

__all__ = [
    "EMBEDDED",
    "EMBEDDED_MODEL",
    "ROLES",
    "UCR_PER_CREDIT",
    "AmountError",
    "ConfigError",
    "Problem",
    "Settings",
    "check_config",
    "find_config_path",
    "format_credits",
    "load_settings",
    "parse_credits",
    "read_secret",
]
