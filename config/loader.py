"""Load, validate and check the settings; every problem reported at once.

    TOML file (--config, $SELFPUB_CONFIG, ./selfpub.toml, /etc/selfpub/selfpub.toml; none found is an error)
      + SELFPUB_SECTION__KEY environment overrides (a name that is no selfpub setting is left alone)
      -> secrets normalised (`x_file`/`x_env` -> SecretRef; a secret value refused)
      -> each section validated on its own (config/checks.py refusals carry their own fix)
      -> cross-key checks -> secrets read -> Settings
    A problem caused by an environment override is named by the variable, not the TOML key.
    state_dir and relative `*_file` names resolve in systemd's folders when it sets them (config/dirs.py);
    so do the keystores in use (x402.signer.keystore_file with the local facilitator, wallet.keystore_file
    in evm mode or with x402.spend), which `config check` refuses when missing or unreadable.
    `need_secrets=False` (read-only commands) reads only the database password: a missing publisher,
    LLM or wallet credential is an error only for the commands that use it.

Errors:
    ConfigError            carries .problems: list[Problem(key, what, fix)]; retryable None (the
                           daemon's job policy stops: no retry or skip fixes a config)
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from config.checks import POSTGRES_DRIVERS, REFUSED, sqlite_folder, state_dir_fix, state_dir_problem
from config.dirs import (  # noqa: F401 - CONFIG_ENV, DEFAULT_PATHS and find_config_path are this module's API too
    CONFIG_ENV,
    CREDENTIALS_HOW,
    DEFAULT_PATHS,
    ENV_PREFIX,
    Resolved,
    ServiceDirs,
    find_config_path,
    resolve_credential,
    resolve_state_dir,
)
from config.problems import ConfigError, Problem
from kernel.money import format_credits
from config.settings import ROLES, SecretRef, Settings


# Keys whose value is a secret. In the TOML they may only be `<key>_file`,
# `<key>_env` or a table {file = ..., env = ...}, never the secret itself.
SECRET_KEYS = ("api_key", "app_password", "keystore_password", "password", "console_token")
SECRET_NAMES = {"password", "private_key", "secret", "token", "api_token", "access_token", "mnemonic", *SECRET_KEYS}
SECRET_SUFFIXES = ("_password", "_secret", "_private_key", "_api_key", "_token")


def _looks_secret(key: str) -> bool:
    key = key.lower()
    return key in SECRET_NAMES or key.endswith(SECRET_SUFFIXES)


def no_config_problem() -> Problem:
    """The problem of finding no config file: where selfpub looked and how to make one."""
    here = Path.cwd()
    searched = ", ".join(str(p if p.is_absolute() else here / p) for p in DEFAULT_PATHS)
    return Problem(
        "config file",
        f"none found (no --config given, ${CONFIG_ENV} not set, and none of {searched} exists)",
        "run `selfpub init` to write a commented selfpub.toml in this folder (or `selfpub init DIR`), "
        f"then pass --config DIR/selfpub.toml or export {CONFIG_ENV}=DIR/selfpub.toml",
    )


def read_toml(path: Path, text: bytes | None = None) -> dict[str, Any]:
    """Parse a TOML file (or `text`, its bytes as already read); decimals stay Decimal so money never becomes a float."""
    try:
        if text is None:
            text = path.read_bytes()
        return tomllib.loads(text.decode(), parse_float=Decimal)
    except FileNotFoundError:
        raise ConfigError(
            [Problem(str(path), "file not found", "run `selfpub init` or pass --config PATH")],
            str(path),
        ) from None
    except PermissionError:
        raise ConfigError(
            [Problem(str(path), "file not readable", f"check the permissions of {path}")], str(path)
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [Problem(str(path), f"not UTF-8 text (byte {exc.start})", "save the file as UTF-8")], str(path)
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [Problem(str(path), f"not valid TOML ({exc})", "fix the syntax at that line")],
            str(path),
        ) from None


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    data: dict[str, Any] | None = None,
    check_files: bool = True,
    probe_state_dir: bool = False,
    need_secrets: bool = True,
    text: bytes | None = None,
) -> Settings:
    """Build the frozen Settings from a TOML file (or `data`) plus SELFPUB_* overrides.

    Raises ConfigError listing every problem found. `probe_state_dir` also checks that
    state_dir can be created and written (creating nothing that stays). `need_secrets=False`
    leaves every secret but the database password unread (its value None). `text`: the config
    file's bytes as the caller read them (config/snapshot.py keys its snapshot by exactly those).
    """
    environ = os.environ if environ is None else environ
    source = None
    if data is None:
        found = find_config_path(path, environ)
        if found is None:
            # Defaults would put a database under /var/lib without anyone having asked for one.
            raise ConfigError([no_config_problem()])
        data = read_toml(found, text)
        source = str(found)
        data.setdefault("_base_dir", str(found.resolve().parent))
    raw = _deep_copy(data)
    base_dir = Path(raw.pop("_base_dir", "."))
    problems: list[Problem] = []
    origins = _apply_env_overrides(raw, environ, problems)
    _normalise_secrets(raw, "", problems)
    problems.extend(_validate_sections(raw))
    dirs = ServiceDirs.from_environ(environ)
    if probe_state_dir:
        problems.extend(_probe_folders(raw, base_dir, dirs, problems))
    if problems:
        # Still report cross-key problems: check what remains with the bad keys dropped.
        partial = _prune_invalid(raw, problems)
        if partial is not None:
            seen = {p.key for p in problems}
            problems.extend(p for p in cross_check(partial) if p.key not in seen)
        raise ConfigError(_name_env_sources(problems, origins), source)
    settings = Settings.model_validate(raw)
    state_dir = state_dir_of(raw, base_dir, dirs).path
    if state_dir != settings.state_dir:
        settings = settings.model_copy(update={"state_dir": state_dir})
    problems.extend(cross_check(settings))
    settings = _resolve_keystores(settings, dirs)
    settings, secret_problems = _resolve_secrets(settings, environ, check_files, need_secrets)
    problems.extend(secret_problems)
    if problems:
        raise ConfigError(_name_env_sources(problems, origins), source)
    return settings


def check_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem of the config at `path`, state dir included (empty list when fine)."""
    try:
        load_settings(path, environ, probe_state_dir=True)
    except ConfigError as exc:
        return exc.problems
    return []


def state_dir_of(raw: Mapping[str, Any], base_dir: Path, dirs: ServiceDirs) -> Resolved:
    """Where state_dir resolves and why: the config, $STATE_DIRECTORY, the default (config/dirs.py)."""
    given = raw.get("state_dir")
    default = Settings.model_fields["state_dir"].default
    return resolve_state_dir(Path(str(given)) if given is not None else None, default, base_dir, dirs)


def where_state_dir(path: Path | None, environ: Mapping[str, str]) -> Resolved:
    """Where state_dir resolves for the config file at `path` (overrides applied) and by which rule."""
    raw = read_toml(path) if path is not None else {}
    _apply_env_overrides(raw, environ, [])
    base_dir = path.resolve().parent if path is not None else Path(".")
    return state_dir_of(raw, base_dir, ServiceDirs.from_environ(environ))


# -- helpers -----------------------------------------------------------------


def _probe_folders(raw: Mapping[str, Any], base_dir: Path, dirs: ServiceDirs, problems: list[Problem]) -> list[Problem]:
    """Problems of the folders selfpub would write: state_dir and a SQLite database's (values already valid)."""
    bad = {p.key for p in problems}
    found = []
    state_dir = raw.get("state_dir")
    if "state_dir" not in bad and (state_dir is None or isinstance(state_dir, (str, Path))):
        folder = state_dir_of(raw, base_dir, dirs).path
        why = state_dir_problem(folder)
        if why:
            found.append(Problem("state_dir", why, state_dir_fix(folder)))
    db = raw.get("database")
    url = db.get("url") if isinstance(db, dict) else None
    if url and isinstance(url, str) and "database.url" not in bad:
        folder = sqlite_folder(url)
        why = state_dir_problem(folder) if folder is not None else None
        if why:
            found.append(Problem("database.url", f"the SQLite file's folder: {why}",
                                 state_dir_fix(folder, "database.url") + " (or leave database.url unset)"))
    return found


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}", parse_float=Decimal)["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str], problems: list[Problem]) -> dict[str, str]:
    """SELFPUB_BUDGET__MIN_BALANCE=3 sets budget.min_balance = 3; returns {dotted key: variable}.

    A variable whose first part names no setting (SELFPUB_TEST_PG_URL, SELFPUB_CONFIG) belongs to
    someone else and is left alone, unless it is a near miss of a section (SELFPUB_BUDGT__X).
    """
    origins: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        if parts[0] not in Settings.model_fields:
            guess = difflib.get_close_matches(parts[0], list(Settings.model_fields), n=1, cutoff=0.8)
            if guess and len(parts) > 1:
                fixed = ENV_PREFIX + "__".join([guess[0], *parts[1:]]).upper()
                problems.append(Problem(name, f"is not a selfpub setting (there is no section `{parts[0]}`)",
                                        f"did you mean {fixed}?"))
            continue
        node = raw
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(Problem(name, f"sets a key inside `{'.'.join(parts[: i + 1])}`, which is not a table",
                                        f"set {ENV_PREFIX}{'__'.join(parts[: i + 1]).upper()} itself, or unset {name}"))
                break
        else:
            node[parts[-1]] = _parse_env_value(environ[name])
            origins[".".join(parts)] = name
    return origins


def _name_env_sources(problems: list[Problem], origins: Mapping[str, str]) -> list[Problem]:
    """Problems whose key was set by an environment override, renamed to that variable."""
    if not origins:
        return problems
    named = []
    for p in problems:
        key = p.key.lower()
        source = max((k for k in origins if key == k or key.startswith((f"{k}.", f"{k}[", f"{k}_file", f"{k}_env"))
                      or k.startswith((f"{key}.", f"{key}["))), key=len, default=None)
        if source is None:
            named.append(p)
        else:
            named.append(Problem(origins[source], f"{p.what} (the environment override of {p.key})", p.fix))
    return named


def _normalise_secrets(node: Any, prefix: str, problems: list[Problem]) -> None:
    """Turn `x_file`/`x_env` into `x = {file, env}` and refuse secret values."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _normalise_secrets(item, f"{prefix}[{i}]", problems)
        return
    if not isinstance(node, dict):
        return
    for key in list(node):
        dotted = f"{prefix}.{key}" if prefix else key
        for suffix, field in (("_file", "file"), ("_env", "env")):
            base = key[: -len(suffix)]
            if key.endswith(suffix) and base in SECRET_KEYS:
                ref = node.setdefault(base, {})
                if isinstance(ref, dict):
                    ref[field] = node.pop(key)
                break
    for key, value in list(node.items()):
        dotted = f"{prefix}.{key}" if prefix else key
        lower = key.lower()
        # Any non-table value (a string, but also a number or a list) is the secret itself: never echo it.
        if value is not None and not isinstance(value, dict) and _looks_secret(lower):
            del node[key]
            problems.append(
                Problem(
                    dotted,
                    "holds a secret value in the TOML; secrets never live in the config file",
                    f'move it to a file readable only by selfpub (chmod 600) and write `{key}_file = "/path"` '
                    f'(under systemd: LoadCredential= and a name relative to $CREDENTIALS_DIRECTORY), '
                    f'or export it in an environment variable and write `{key}_env = "VAR_NAME"`',
                )
            )
        else:
            _normalise_secrets(value, dotted, problems)


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at `loc` (for did-you-mean)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:
            current = _unwrap(current, part)
        if current is None:
            return None
    current = _unwrap(current, None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any, part: Any) -> Any:
    """Reach into Optional/tuple/dict annotations to the model inside."""
    origin = get_origin(annotation)
    if origin is None:
        return annotation
    args = [a for a in get_args(annotation) if a is not type(None) and a is not Ellipsis]
    if origin is dict:
        return args[-1] if part is not None else None
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _unwrap(arg, part)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return None


def _describe(err: dict[str, Any]) -> Problem:
    loc = tuple(err["loc"])
    key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_at(Settings, loc[:-1])
        names = list(owner.model_fields) if owner else []
        names = [n for n in names if not n.endswith("_value")]
        guess = difflib.get_close_matches(str(loc[-1]), names, n=1)
        fix = f"did you mean `{guess[0]}`?" if guess else (
            f"remove it; known keys here: {', '.join(names)}" if names else "remove it"
        )
        return Problem(key, "unknown key", fix)
    if kind == "missing":
        return Problem(key, "is required", "add it to the config")
    if kind == REFUSED:
        return Problem(key, err["ctx"]["what"], err["ctx"]["fix"])
    given = err.get("input")
    shown = "" if isinstance(given, dict) else f" (got {given!r})"
    return Problem(key, f"{err['msg']}{shown}", _fix_for(kind))


def _fix_for(kind: str) -> str:
    if kind.startswith(("int_", "float_")) or kind in ("greater_than_equal", "less_than_equal"):
        return "give a whole number in the allowed range"
    if kind.startswith("bool"):
        return "write true or false"
    if kind == "literal_error":
        return "use one of the allowed values"
    if kind == "value_error":
        return "correct the value as the message says"
    if kind.startswith("string"):
        return "write a quoted string"
    return "see config/selfpub.example.toml for the expected form"


def _validate_sections(raw: dict[str, Any]) -> list[Problem]:
    """Validate each top-level section on its own so one bad section hides no other."""
    problems: list[Problem] = []
    for key in raw:
        if key not in Settings.model_fields:
            guess = difflib.get_close_matches(key, list(Settings.model_fields), n=1)
            fix = f"did you mean `{guess[0]}`?" if guess else "remove it"
            problems.append(Problem(key, "unknown section or key", fix))
    for name, field in Settings.model_fields.items():
        if name not in raw:
            continue
        try:
            # rebuild_annotation keeps a top-level field's own validators (persona, duplicate feeds).
            TypeAdapter(field.rebuild_annotation()).validate_python(raw[name])
        except ValidationError as exc:
            for err in exc.errors():
                err = dict(err)
                err["loc"] = (name, *err["loc"])
                problems.append(_describe(err))
    if not problems:
        try:
            Settings.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_describe(dict(e)) for e in exc.errors())
    return problems


def _prune_invalid(raw: dict[str, Any], problems: list[Problem]) -> Settings | None:
    """Settings with every reported key removed, or None when that still fails."""
    pruned = _deep_copy(raw)
    for p in problems:
        parts = p.key.replace("[", ".[").split(".")
        node: Any = pruned
        for part in parts[:-1]:
            if part.startswith("["):
                idx = int(part[1:-1])
                node = node[idx] if isinstance(node, list) and idx < len(node) else None
            else:
                node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    try:
        return Settings.model_validate(pruned)
    except ValidationError:
        return None


def cross_check(settings: Settings) -> list[Problem]:
    """Checks that span keys: hysteresis order, prices for every model, payees allowed."""
    problems: list[Problem] = []
    b = settings.budget
    if b.min_balance > b.resume_balance:
        problems.append(
            Problem(
                "budget.min_balance",
                f"is above budget.resume_balance ({format_credits(b.min_balance)} > {format_credits(b.resume_balance)} credits), "
                "so a paused loop could never resume",
                "set min_balance <= resume_balance",
            )
        )
    for model in sorted(settings.models_in_use()):
        if model not in settings.prices:
            problems.append(
                Problem(
                    f"prices.{model}",
                    "no price for a model that an agent is configured to call",
                    f'add [prices."{model}"] with input_per_million and output_per_million (credits)',
                )
            )
    w = settings.wallet
    if w.mode == "evm":
        for key in ("rpc_url", "chain_id", "token_address", "address", "keystore_file"):
            if getattr(w, key) in (None, ""):
                problems.append(Problem(f"wallet.{key}", "is required when wallet.mode = \"evm\"", f"set wallet.{key}"))
        if w.keystore_password is None:
            problems.append(
                Problem("wallet.keystore_password_file", "is required when wallet.mode = \"evm\"",
                        "point keystore_password_file at a file holding the keystore password")
            )
    problems += _x402_problems(settings)
    problems += _x402_spend_problems(settings)
    problems += _site_problems(settings)
    allowed = {a.lower() for a in w.allowlist}
    for name, payee in w.providers.items():
        if payee.lower() not in allowed:
            problems.append(
                Problem(f"wallet.providers.{name}", f"payee {payee} is not in wallet.allowlist",
                        "add the address to wallet.allowlist or remove the provider")
            )
    d = settings.publishers.devto
    if d.enabled and d.api_key is None:
        problems.append(Problem("publishers.devto.api_key_file", "Dev.to is enabled without an API key",
                                "set api_key_file (or api_key_env), or enabled = false"))
    bs = settings.publishers.bluesky
    if bs.enabled and (bs.handle is None or bs.app_password is None):
        problems.append(Problem("publishers.bluesky", "Bluesky is enabled without handle and app_password_file",
                                "set handle and app_password_file (or app_password_env), or enabled = false"))
    db = settings.database
    if db.password is not None and (db.url is None or not db.url.startswith(POSTGRES_DRIVERS)):
        problems.append(Problem("database.password_file", "a database password is set, but database.url is not a "
                                "PostgreSQL URL (SQLite has no password)",
                                "set database.url = \"postgresql+psycopg://user@host:5432/dbname\", or remove the password"))
    for role in ROLES:
        for i, tier in enumerate(settings.agents.role(role).tiers):
            if i and tier.min_runway_days >= settings.agents.role(role).tiers[i - 1].min_runway_days:
                problems.append(Problem(f"agents.{role}.tiers[{i}]", "tiers must be listed from the highest min_runway_days down",
                                        "reorder the tiers"))
    return problems


def _site_problems(settings: Settings) -> list[Problem]:
    """The site needs a listener of its own: not the status page's address."""
    s, h = settings.site, settings.http
    if s.enabled and h.enabled and s.port and s.port == h.port and s.bind == h.bind:
        return [Problem("site.port", f"is http.port too ({s.bind}:{s.port}): the site and the status page "
                        "each need a listener of their own", "set site.port to another port, e.g. 8788")]
    return []


def _x402_problems(settings: Settings) -> list[Problem]:
    """Paid reads need a chain wallet to be paid into and, with the local facilitator, a key to settle with."""
    x, w = settings.x402, settings.wallet
    if not x.enabled:
        return []
    problems = []
    if w.mode != "evm":
        problems.append(Problem("x402.enabled", f"paid reads need a chain wallet with an EIP-3009 token (wallet.mode is \"{w.mode}\")",
                                'set wallet.mode = "evm" with the token and its RPC, or x402.enabled = false'))
        return problems
    for key, default in (("network", "chain_id"), ("asset", "token_address"), ("pay_to", "address")):
        if getattr(x, key) is None and getattr(w, default) in (None, ""):
            problems.append(Problem(f"x402.{key}", f"is unset and so is wallet.{default}", f"set x402.{key} or wallet.{default}"))
    if x.facilitator == "local" and (x.signer is None or x.signer.keystore_password is None):
        problems.append(Problem("x402.signer", "the local facilitator has no key to settle payments with",
                                "create a keystore (selfpub wallet new --keystore FILE) holding a little native coin for gas "
                                "and set [x402.signer] keystore_file and keystore_password_file, or set x402.facilitator to "
                                "a facilitator service's URL"))
    return problems


def _x402_spend_problems(settings: Settings) -> list[Problem]:
    """Paying for inference enabled, but with nothing the default-deny policy could ever let through."""
    s, w = settings.x402.spend, settings.wallet
    if not s.enabled:
        return []
    problems = []
    if w.keystore_file is None or w.keystore_password is None:
        problems.append(Problem("x402.spend.enabled", "paying for inference signs with the wallet's key, and "
                                "wallet.keystore_file or wallet.keystore_password_file is not set",
                                "set both (selfpub wallet new --keystore FILE), or x402.spend.enabled = false"))
    never = "is unset, so every payment would be refused"
    if s.network is None:
        problems.append(Problem("x402.spend.network", never, 'set the chain the provider is paid on, e.g. "eip155:8453"'))
    if s.asset is None:
        problems.append(Problem("x402.spend.asset", never, "set the token's address (an EIP-3009 token such as USDC)"))
    if not s.payees:
        problems.append(Problem("x402.spend.payees", "is empty, so every payment would be refused",
                                'list the providers you agree to pay, e.g. payees = ["0x..."]'))
    if s.daily_cap == 0:
        problems.append(Problem("x402.spend.daily_cap", "is 0, so every payment would be refused",
                                'set the most to pay a day in credits, e.g. daily_cap = "5"'))
    return problems


def read_secret(ref: SecretRef, key: str, environ: Mapping[str, str], check_files: bool = True) -> tuple[SecretStr | None, Problem | None]:
    """Read a secret from its file or environment variable; a Problem when it cannot be had."""
    if ref.file is not None:
        resolved = resolve_credential(ref.file, ServiceDirs.from_environ(environ))
        if not check_files:
            return None, None
        if resolved is None and not ref.file.exists():  # a relative name that is no file here either
            return None, Problem(f"{key}_file", f"{ref.file} is a credential name and no credentials folder is given",
                                 CREDENTIALS_HOW)
        path = resolved.path if resolved is not None else ref.file
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            name = ref.file
            fix = ("create the file or fix the path" if name.is_absolute() else
                   f"put a file `{name}` in that folder; under systemd: `systemd-creds encrypt --name={name} - "
                   f"/etc/credstore.encrypted/{name}` (the unit must name it: LoadCredentialEncrypted={name}), "
                   "then restart")
            return None, Problem(f"{key}_file", f"cannot read {path} ({exc.strerror})", fix)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            return None, Problem(f"{key}_file", f"{path} is readable by group or others (mode {stat.S_IMODE(mode):o})",
                                 f"run `chmod 600 {path}`")
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            return None, Problem(f"{key}_file", f"cannot read {path} ({type(exc).__name__})",
                                 "make the file readable by the selfpub user and UTF-8 text")
        if not value:
            return None, Problem(f"{key}_file", f"{path} is empty", "write the secret into the file")
        return SecretStr(value), None
    if ref.env is not None:
        value = environ.get(ref.env, "")
        if not value:
            return None, Problem(f"{key}_env", f"environment variable {ref.env} is not set or empty",
                                 f"export {ref.env}=... in the service environment, or use {key.rsplit('.', 1)[-1]}_file")
        return SecretStr(value), None
    return None, Problem(key, "has neither file nor env", f"set {key}_file or {key}_env")


def secret_refs(settings: Settings) -> list[tuple[str, SecretRef]]:
    """Every secret the settings name, as (dotted key, reference)."""
    found: list[tuple[str, SecretRef | None]] = []
    for role in ROLES:
        agent = settings.agents.role(role)
        found.append((f"agents.{role}.api_key", agent.api_key))
        found.extend((f"agents.{role}.fallbacks[{i}].api_key", fb.api_key) for i, fb in enumerate(agent.fallbacks))
    found += [("publishers.devto.api_key", settings.publishers.devto.api_key),
              ("publishers.bluesky.app_password", settings.publishers.bluesky.app_password),
              ("wallet.keystore_password", settings.wallet.keystore_password),
              ("database.password", settings.database.password),
              ("http.console_token", settings.http.console_token)]
    if settings.x402.signer is not None:
        found.append(("x402.signer.keystore_password", settings.x402.signer.keystore_password))
    return [(key, ref) for key, ref in found if ref is not None]


def keystores_in_use(settings: Settings) -> list[tuple[str, Path]]:
    """Every keystore file something will open, as (dotted key, path): the facilitator's and the wallet's."""
    x, w = settings.x402, settings.wallet
    found = []
    if x.enabled and x.facilitator == "local" and x.signer is not None:
        found.append(("x402.signer.keystore_file", x.signer.keystore_file))
    if w.keystore_file is not None and (w.mode == "evm" or x.spend.enabled):
        found.append(("wallet.keystore_file", w.keystore_file))
    return found


def _resolve_keystores(settings: Settings, dirs: ServiceDirs) -> Settings:
    """Relative keystore names resolved where relative credential names do, so the check and the use agree."""
    x, w = settings.x402, settings.wallet
    if x.signer is not None and (found := resolve_credential(x.signer.keystore_file, dirs)) is not None:
        signer = x.signer.model_copy(update={"keystore_file": found.path})
        settings = settings.model_copy(update={"x402": x.model_copy(update={"signer": signer})})
    if w.keystore_file is not None and (found := resolve_credential(w.keystore_file, dirs)) is not None:
        settings = settings.model_copy(update={"wallet": w.model_copy(update={"keystore_file": found.path})})
    return settings


def keystore_problem(key: str, path: Path) -> Problem | None:
    """Why the keystore at `path` cannot be opened (None when it can be read; its password is checked at use)."""
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except FileNotFoundError:
        where = "" if path.is_absolute() else f"; a relative name resolves in the credentials folder: {CREDENTIALS_HOW}"
        return Problem(key, f"{path} does not exist",
                       f"create it with `selfpub wallet new --keystore {path}`, or point {key} at the keystore{where}")
    except OSError as exc:
        return Problem(key, f"cannot read {path} ({exc.strerror or type(exc).__name__})",
                       f"point {key} at the keystore file and make it readable by the selfpub user "
                       f"(chmod 600, owned by that user)")
    return None


def credential_report(settings: Settings, environ: Mapping[str, str]) -> list[tuple[str, str, Problem | None]]:
    """(key, where it resolves, problem) for every secret and keystore the settings name: what `config check` prints."""
    dirs = ServiceDirs.from_environ(environ)
    rows = []
    for key, path in keystores_in_use(settings):
        # Already resolved by load_settings: absolute, or relative to the current folder when no credentials folder.
        where = str(path) if path.is_absolute() else f"{path} (relative to the current folder)"
        rows.append((key, where, keystore_problem(key, path)))
    for key, ref in secret_refs(settings):
        if ref.file is not None:
            resolved = resolve_credential(ref.file, dirs)
            if resolved is None and not ref.file.exists():  # only the unit (or --credentials) can say
                rows.append((key, f"{ref.file}: a credential name, not checked here; to check it, {CREDENTIALS_HOW}", None))
                continue
            where = str(resolved) if resolved is not None else f"{ref.file} (relative to the current folder)"
        else:
            where = f"${ref.env} (environment)"
        rows.append((key, where, read_secret(ref, key, environ)[1]))
    return rows


def _resolve_secrets(settings: Settings, environ: Mapping[str, str], check_files: bool,
                     need_secrets: bool = True) -> tuple[Settings, list[Problem]]:
    problems: list[Problem] = []

    def resolve(section: BaseModel, ref_field: str, value_field: str, key: str) -> BaseModel:
        ref = getattr(section, ref_field)
        if ref is None or (not need_secrets and not key.startswith("database.")):
            return section
        value, problem = read_secret(ref, key, environ, check_files)
        if problem:
            problems.append(problem)
        return section.model_copy(update={value_field: value})

    agents = {}
    for role in ROLES:
        agent = resolve(settings.agents.role(role), "api_key", "api_key_value", f"agents.{role}.api_key")
        fallbacks = tuple(
            resolve(fb, "api_key", "api_key_value", f"agents.{role}.fallbacks[{i}].api_key")
            for i, fb in enumerate(agent.fallbacks)
        )
        agents[role] = agent.model_copy(update={"fallbacks": fallbacks})
    pubs = settings.publishers
    devto = resolve(pubs.devto, "api_key", "api_key_value", "publishers.devto.api_key")
    bsky = resolve(pubs.bluesky, "app_password", "app_password_value", "publishers.bluesky.app_password")
    wallet = resolve(settings.wallet, "keystore_password", "keystore_password_value", "wallet.keystore_password")
    database = resolve(settings.database, "password", "password_value", "database.password")
    http = resolve(settings.http, "console_token", "console_token_value", "http.console_token")
    x402 = settings.x402
    if x402.signer is not None:
        signer = resolve(x402.signer, "keystore_password", "keystore_password_value", "x402.signer.keystore_password")
        x402 = x402.model_copy(update={"signer": signer})
    settings = settings.model_copy(
        update={
            "agents": settings.agents.model_copy(update=agents),
            "publishers": pubs.model_copy(update={"devto": devto, "bluesky": bsky}),
            "wallet": wallet,
            "database": database,
            "http": http,
            "x402": x402,
        }
    )
    return settings, problems
