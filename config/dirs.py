"""Where selfpub's config file, folders and credential files resolve: the config, then the folders systemd hands over.

    the config file         --config, then $SELFPUB_CONFIG, then ./selfpub.toml, then /etc/selfpub/selfpub.toml

    $STATE_DIRECTORY        (StateDirectory=)    state_dir unset -> this folder; a relative state_dir resolves in it
    $CACHE_DIRECTORY        (CacheDirectory=)    what may be thrown away: matplotlib's font cache (MPLCONFIGDIR)
    $LOGS_DIRECTORY         (LogsDirectory=)     none used: logs go to stdout, i.e. the journal; reported only
    $CREDENTIALS_DIRECTORY  (LoadCredential=, or `selfpub --credentials DIR`)  a relative `*_file` name resolves in it

systemd may pass a colon-separated list (StateDirectory=a b); selfpub's folder is the first.
Without $STATE_DIRECTORY a relative state_dir resolves next to the config file, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "SELFPUB_"  # SELFPUB_SECTION__KEY overrides a setting (config/loader.py)
CONFIG_ENV = "SELFPUB_CONFIG"
DEFAULT_PATHS = (Path("selfpub.toml"), Path("/etc/selfpub/selfpub.toml"))
STATE_ENV = "STATE_DIRECTORY"
CACHE_ENV = "CACHE_DIRECTORY"
LOGS_ENV = "LOGS_DIRECTORY"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
# Where the CLI outside the unit is told to point relative credential names.
CREDENTIALS_HOW = (f"pass `selfpub --credentials DIR ...` (DIR holds one file per credential name) "
                   f"or export {CREDENTIALS_ENV}=DIR; under systemd, LoadCredential= sets it")


def find_config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file: --config, then $SELFPUB_CONFIG, then ./selfpub.toml, then /etc."""
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return candidate
    return None



def first_path(value: str | None) -> Path | None:
    """The first path of a systemd directory variable (a colon-separated list), None when unset or empty."""
    for part in (value or "").split(":"):
        if part.strip():
            return Path(part.strip())
    return None


@dataclass(frozen=True)
class ServiceDirs:
    """The folders systemd handed to this process (None outside a unit that asks for them)."""

    state: Path | None = None
    cache: Path | None = None
    logs: Path | None = None
    credentials: Path | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServiceDirs:
        """Read $STATE_DIRECTORY, $CACHE_DIRECTORY, $LOGS_DIRECTORY and $CREDENTIALS_DIRECTORY."""
        return cls(*(first_path(environ.get(name)) for name in (STATE_ENV, CACHE_ENV, LOGS_ENV, CREDENTIALS_ENV)))


@dataclass(frozen=True)
class Resolved:
    """A path and the rule that chose it (what `config check` prints)."""

    path: Path
    origin: str

    def __str__(self) -> str:
        return f"{self.path} ({self.origin})"


def resolve_state_dir(given: Path | None, default: Path, base_dir: Path, dirs: ServiceDirs) -> Resolved:
    """state_dir: absolute as written; unset or relative -> in $STATE_DIRECTORY when set, else the default / the config's folder."""
    if given is not None and given.is_absolute():
        return Resolved(given, "state_dir in the config")
    if dirs.state is not None:
        if given is None:
            return Resolved(dirs.state, f"${STATE_ENV}, state_dir unset")
        return Resolved(dirs.state / given, f"state_dir relative to ${STATE_ENV}")
    if given is None:
        return Resolved(default, "the default, state_dir unset")
    return Resolved((base_dir / given).resolve(), "state_dir relative to the config file's folder")


def resolve_credential(name: Path, dirs: ServiceDirs) -> Resolved | None:
    """A credential file: absolute as written, relative in $CREDENTIALS_DIRECTORY; None when relative with no such folder."""
    if name.is_absolute():
        return Resolved(name, "absolute path in the config")
    if dirs.credentials is not None:
        return Resolved(dirs.credentials / name, f"${CREDENTIALS_ENV} or --credentials")
    return None


def cache_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Variables to add so caches land in $CACHE_DIRECTORY (the state dir stays what must be kept)."""
    cache = first_path(environ.get(CACHE_ENV))
    if cache is None or environ.get("MPLCONFIGDIR"):
        return {}
    return {"MPLCONFIGDIR": str(cache / "matplotlib")}
