"""The validated settings, kept between runs so a read-only command starts without pydantic.

    a load through config/loader.py (pydantic, every check) that succeeds
        keep(load, path, environ)  ->  <cache>/settings-<hash of the config's path>.json   (0600, atomic)
    `ledger report`, `drafts list` (AppContext.read_only(plain=True))
        read(path, environ) -> Frozen: the same values as read-only attribute trees, no pydantic imported
                            -> None when anything the load depends on differs: the caller loads in full,
                               which writes the snapshot again

    the key (sha256)    FORMAT; the config file's resolved path and bytes; every variable the loader
                        reads (SELFPUB_*, systemd's folders); the code that validates: config/*.py,
                        kernel/money.py and pydantic's version.py (which pins pydantic-core)
    <cache>             $CACHE_DIRECTORY (systemd CacheDirectory=), else $XDG_CACHE_HOME/selfpub,
                        else ~/.cache/selfpub; a folder that cannot be written keeps nothing

Written only from settings pydantic accepted, validated from the very bytes the key hashes (the
file is read once, then loaded and hashed). Never a secret: settings holding a secret's value (a
database password, or any credential of a command that needs them) are not written at all, so the
properties kept beside the fields (Settings.database_url) cannot carry one either. Only the
read-only commands read it; the daemon and every command that writes validate in full each time.
The libraries some checks call (APScheduler's cron parser, zoneinfo, SQLAlchemy's URL parser) are
not in the key: a value one of them would refuse after an upgrade is refused by the next full load.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from config.dirs import CACHE_ENV, CREDENTIALS_ENV, ENV_PREFIX, LOGS_ENV, STATE_ENV, first_path

FORMAT = 1
DIR_VARIABLES = (STATE_ENV, CACHE_ENV, LOGS_ENV, CREDENTIALS_ENV)
_CODE = Path(__file__).resolve().parent
# The code whose answer the snapshot keeps: the schema, loader and checks, and the money parser they use.
CODE_FILES = (*sorted(_CODE.glob("*.py")), _CODE.parent / "kernel" / "money.py")
LIBRARY_MODULES = ("pydantic.version",)  # its file names pydantic's version and the pydantic-core it requires

T = TypeVar("T")


class Frozen:
    """One settings section read from a snapshot: its fields (and properties) as read-only attributes."""

    __slots__ = ("_section", "_values")

    def __init__(self, section: str, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - a field's value
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._section}.{name} is not kept in the settings snapshot") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self._section} is frozen")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frozen) and (self._section, self._values) == (other._section, other._values)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{self._section}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


def cache_folder(environ: Mapping[str, str]) -> Path | None:
    """Where snapshots are kept; None when no folder can be named (no $HOME)."""
    systemd = first_path(environ.get(CACHE_ENV))
    if systemd is not None:
        return systemd
    xdg = environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "selfpub"
    home = environ.get("HOME")
    return Path(home) / ".cache" / "selfpub" if home else None


def snapshot_path(config: Path, environ: Mapping[str, str]) -> Path | None:
    """The snapshot file of the config at `config` (one per config file)."""
    folder = cache_folder(environ)
    if folder is None:
        return None
    name = hashlib.sha256(str(config.resolve()).encode()).hexdigest()[:20]
    return folder / f"settings-{name}.json"


def key_of(config: Path, text: bytes, environ: Mapping[str, str], library: list[str]) -> str | None:
    """The hash of everything a load of `config` (whose bytes are `text`) depends on; None when a file is unreadable."""
    digest = hashlib.sha256(f"selfpub settings snapshot {FORMAT}\n{config.resolve()}\n".encode())
    digest.update(text)
    try:
        for path in (*CODE_FILES, *library):
            digest.update(f"\n{path}\n".encode())
            digest.update(Path(path).read_bytes())
    except OSError:
        return None
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) or name in DIR_VARIABLES:
            digest.update(f"\n{name}={environ[name]}".encode())
    return digest.hexdigest()


def read(config: Path | None, environ: Mapping[str, str]) -> Frozen | None:
    """The kept settings of `config` when nothing they depend on changed since; None otherwise."""
    if config is None:
        return None
    path = snapshot_path(config, environ)
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("format") != FORMAT:
        return None
    library, tree = kept.get("library"), kept.get("settings")
    if not (isinstance(library, list) and all(isinstance(p, str) for p in library) and isinstance(tree, str)):
        return None
    text = _bytes_of(config)
    if text is None or key_of(config, text, environ, library) != kept.get("key"):
        return None
    if hashlib.sha256(tree.encode()).hexdigest() != kept.get("digest"):
        return None  # damaged since it was written
    settings = json.loads(tree, object_hook=_decode)
    return settings if isinstance(settings, Frozen) else None


def keep(load: Callable[[bytes | None], T], config: Path | None, environ: Mapping[str, str]) -> T:
    """load(the config's bytes), and keep what it returns as the snapshot of `config` when it may be.

    `load` must validate those bytes, not read the file again: the snapshot is keyed by them.
    Keeping is best-effort: a folder that cannot be written, settings with a secret's value or a
    value the snapshot cannot carry keep nothing (an older snapshot of the same key stays, and
    stays right: a secret's value is what it never holds), never an error.
    """
    text = _bytes_of(config)
    settings = load(text)
    path = snapshot_path(config, environ) if config is not None else None
    if path is None or text is None:
        return settings
    try:
        tree = json.dumps(_encode(settings))
    except _NotKept:
        return settings
    library = [getattr(sys.modules.get(m), "__file__", None) for m in LIBRARY_MODULES]
    key = key_of(config, text, environ, library) if all(library) else None  # type: ignore[arg-type]
    if key is not None:
        _write(path, json.dumps({"format": FORMAT, "key": key, "library": library,
                                 "digest": hashlib.sha256(tree.encode()).hexdigest(), "settings": tree}))
    return settings


def _bytes_of(config: Path | None) -> bytes | None:
    try:
        return config.read_bytes() if config is not None else None
    except OSError:
        return None


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=path.parent)  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # nowhere to keep it: every read-only command loads in full, as before


class _NotKept(Exception):
    """A value the snapshot does not carry (a secret, or a type it does not know)."""


def _encode(value: Any) -> Any:  # noqa: ANN401 - a settings value
    from pydantic import BaseModel, SecretStr  # loaded already: only a full load calls this

    if isinstance(value, BaseModel):
        values = {name: _encode(getattr(value, name)) for name in type(value).model_fields}
        for klass in type(value).__mro__:
            if klass is BaseModel:
                break
            for name, attr in vars(klass).items():
                if isinstance(attr, property) and name not in values:
                    values[name] = _encode(getattr(value, name))
        return {"$section": type(value).__name__, "values": values}
    if isinstance(value, SecretStr):
        raise _NotKept("a secret's value")
    if value is None or type(value) in (bool, int, str) or (type(value) is float and value == value):
        return value
    if isinstance(value, Path):
        return {"$path": str(value)}
    if type(value) is tuple:
        return {"$tuple": [_encode(v) for v in value]}
    if type(value) is list:
        return [_encode(v) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {"$dict": [[k, _encode(v)] for k, v in value.items()]}  # pairs: a key is never read as a tag
    raise _NotKept(f"a {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:  # noqa: ANN401 - a settings value
    if len(obj) == 1:
        (tag, value), = obj.items()
        if tag == "$path":
            return Path(value)
        if tag == "$tuple":
            return tuple(value)
        if tag == "$dict":
            return dict(value)
    if obj.keys() == {"$section", "values"}:
        return Frozen(obj["$section"], obj["values"])
    return obj
