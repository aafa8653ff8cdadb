"""The settings snapshot (config/snapshot.py) is a cache a read-only command cannot tell from a full load.

    round trip          Hypothesis: for generated configs (overrides of every kind of value: credits,
                        floats, paths, tuples, dicts of sections), the snapshot read back has every field
                        and property of the pydantic Settings, same values, same types
    model               a state machine edits the config (valid, invalid, with a database password),
                        the overrides, systemd's folders and the validating code, damages the snapshot,
                        and runs read-only and full loads: each read-only load equals a full load of that
                        moment (or fails with the same problems), and no snapshot ever holds a secret
    exact bytes         a file edited while it loads is never kept under the bytes it now has
    two processes       writing and reading one snapshot at once: every read is a variant that was
                        written, and the last write wins
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pydantic import BaseModel

from config import ConfigError, load_settings, snapshot
from config.snapshot import Frozen
from daemon.context import AppContext

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "selfpub.example.toml"
ADDRESS = st.from_regex(r"0x[0-9a-f]{40}", fullmatch=True)
CREDITS = st.decimals(min_value=0, max_value=10_000, places=6).map(lambda d: f'"{d}"')
NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)

# SELFPUB_ overrides (a TOML value each), one per kind of value the settings hold.
OVERRIDES = {
    "SELFPUB_PERSONA": NAMES.map(json.dumps),
    "SELFPUB_STATE_DIR": st.sampled_from(["state", "other/state", "/tmp/selfpub-abs-state"]).map(json.dumps),
    "SELFPUB_BUDGET__MIN_BALANCE": CREDITS,
    "SELFPUB_BUDGET__RESERVATION_TTL_SECONDS": st.integers(1, 10**9).map(str),
    "SELFPUB_AGENTS__WRITER__TEMPERATURE": st.floats(0, 2, allow_nan=False).map(repr),
    "SELFPUB_RESEARCH__NEAR_DUPLICATE_THRESHOLD": st.floats(0, 1, allow_nan=False).map(repr),
    "SELFPUB_RESEARCH__BRIEF": st.sampled_from(['"writer"', '"model"']),
    "SELFPUB_APPROVAL__MODE": st.sampled_from(['"auto"', '"manual"', '"risky"']),
    "SELFPUB_PUBLISHERS__LOCAL__DIRECTORY": st.sampled_from(["outbox", "/tmp/out box", "ünï/côdé"]).map(json.dumps),
    "SELFPUB_WALLET__ALLOWLIST": st.lists(ADDRESS, max_size=3, unique=True).map(json.dumps),
    "SELFPUB_X402__PRICE_ARTICLE": CREDITS,
    "SELFPUB_SUSTAIN__ENABLED": st.sampled_from(["true", "false"]),
    "SELFPUB_SUSTAIN__CONSERVE_MODELS": st.just('{writer = "smollm2-135m-instruct"}'),
    "SELFPUB_DISCLOSURE__BLUESKY": st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                                           min_size=1, max_size=40).map(json.dumps),
}


def properties(model: type[BaseModel]) -> list[str]:
    """The properties a model class defines (kept beside its fields)."""
    names = []
    for klass in model.__mro__:
        if klass is BaseModel:
            break
        names += [n for n, attr in vars(klass).items() if isinstance(attr, property)]
    return names


def assert_same(kept: Any, value: Any, where: str = "settings") -> None:  # noqa: ANN401
    """`kept` (from the snapshot) has `value`'s every field and property, with equal values of the same types."""
    if isinstance(value, BaseModel):
        assert isinstance(kept, Frozen), where
        names = [*type(value).model_fields, *properties(type(value))]
        assert set(kept._values) == set(names), where
        for name in names:
            assert_same(getattr(kept, name), getattr(value, name), f"{where}.{name}")
    elif isinstance(value, (tuple, list)):
        assert type(kept) is type(value) and len(kept) == len(value), where
        for i, (k, v) in enumerate(zip(kept, value)):
            assert_same(k, v, f"{where}[{i}]")
    elif isinstance(value, dict):
        assert type(kept) is dict and list(kept) == list(value), where
        for name in value:
            assert_same(kept[name], value[name], f"{where}[{name!r}]")
    else:
        assert type(kept) is type(value) and kept == value, (where, kept, value)


def _config(folder: Path, text: str | None = None) -> Path:
    path = folder / "selfpub.toml"
    path.write_text(EXAMPLE.read_text() if text is None else text)
    return path


def _keep(path: Path, environ: dict[str, str], *, need_secrets: bool = False) -> Any:  # noqa: ANN401
    return snapshot.keep(lambda text: load_settings(path, environ, need_secrets=need_secrets, text=text), path, environ)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(OVERRIDES)), st.none(), max_size=len(OVERRIDES)).flatmap(
    lambda chosen: st.fixed_dictionaries({name: OVERRIDES[name] for name in chosen})))
def test_the_snapshot_holds_every_field_and_property_with_its_type(overrides: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _config(folder)
        environ = {"XDG_CACHE_HOME": str(folder / "cache"), **overrides}
        try:
            full = load_settings(path, environ, need_secrets=False)
        except ConfigError:
            return  # a generated value the settings refuse: nothing to keep (the model test covers errors)
        _keep(path, environ)
        kept = snapshot.read(path, environ)
        assert kept is not None
        assert_same(kept, full)
        assert kept.database_url == full.database_url and isinstance(kept.state_dir, Path)


def test_a_kept_section_is_read_only_and_names_what_it_lacks(tmp_path: Path) -> None:
    path, environ = _config(tmp_path), {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    _keep(path, environ)
    kept = snapshot.read(path, environ)
    with pytest.raises(AttributeError, match="frozen"):
        kept.persona = "x"
    with pytest.raises(AttributeError, match="Settings.no_such_key is not kept"):
        kept.no_such_key  # noqa: B018
    assert oct(snapshot.snapshot_path(path, environ).stat().st_mode & 0o777) == "0o600"


# -- what the key holds: any change is a full load --------------------------------------------------


def _changes(tmp_path: Path, path: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict:
    code = tmp_path / "code.py"
    code.write_text("x = 1\n")
    monkeypatch.setattr(snapshot, "CODE_FILES", (*snapshot.CODE_FILES, code))
    return {
        "the config's bytes": lambda: path.write_text(path.read_text() + "\n# an edit\n"),
        "an override": lambda: environ.update(SELFPUB_BUDGET__MIN_BALANCE='"3"'),
        "$STATE_DIRECTORY": lambda: environ.update(STATE_DIRECTORY=str(tmp_path / "elsewhere")),
        "$CREDENTIALS_DIRECTORY": lambda: environ.update(CREDENTIALS_DIRECTORY=str(tmp_path / "creds")),
        "the validating code": lambda: code.write_text("x = 2\n"),
    }


@pytest.mark.parametrize("change", ["the config's bytes", "an override", "$STATE_DIRECTORY",
                                    "$CREDENTIALS_DIRECTORY", "the validating code", "pydantic's version"])
def test_any_change_of_what_a_load_reads_makes_the_snapshot_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    path, environ = _config(tmp_path), {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    changes = _changes(tmp_path, path, environ, monkeypatch)
    version = tmp_path / "version.py"
    version.write_text("VERSION = '2.14.4'\n")
    changes["pydantic's version"] = lambda: version.write_text("VERSION = '2.14.5'\n")

    class Pydantic:  # the module whose file names pydantic's version, as keep() finds it in sys.modules
        __file__ = str(version)

    monkeypatch.setitem(__import__("sys").modules, "pydantic.version", Pydantic)
    _keep(path, environ)
    assert snapshot.read(path, environ) is not None
    changes[change]()
    assert snapshot.read(path, environ) is None


@pytest.mark.parametrize("damage", ["truncated", "not JSON", "a byte of the settings", "another format", "gone"])
def test_a_damaged_snapshot_is_not_read(tmp_path: Path, damage: str) -> None:
    path, environ = _config(tmp_path), {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    _keep(path, environ)
    kept = snapshot.snapshot_path(path, environ)
    text = kept.read_text()
    document = json.loads(text)
    if damage == "truncated":
        kept.write_text(text[: len(text) // 2])
    elif damage == "not JSON":
        kept.write_bytes(b"\xff\xfe garbage")
    elif damage == "a byte of the settings":
        document["settings"] = document["settings"].replace('"default"', '"defaulT"', 1)
        kept.write_text(json.dumps(document))
    elif damage == "another format":
        kept.write_text(json.dumps({**document, "format": snapshot.FORMAT + 1}))
    else:
        kept.unlink()
    assert snapshot.read(path, environ) is None
    _keep(path, environ)  # the next full load writes it again
    assert snapshot.read(path, environ) is not None


def test_what_is_kept_is_what_the_key_hashes_even_when_the_file_changes_during_the_load(tmp_path: Path) -> None:
    """The file is read once: a load that read it again could keep another version under these bytes'
    key (here the file is edited while it loads, then put back, so the first bytes are current again)."""
    path, environ = _config(tmp_path), {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    original = path.read_text()
    edited = original.replace('persona = "default"', 'persona = "edited"')

    def load_while_edited(text: bytes | None) -> Any:  # noqa: ANN401
        path.write_text(edited)  # someone saves the file as this one starts to load ...
        try:
            return load_settings(path, environ, need_secrets=False, text=text)
        finally:
            path.write_text(original)  # ... and puts it back

    assert snapshot.keep(load_while_edited, path, environ).persona == "default"
    assert snapshot.read(path, environ).persona == "default"
    path.write_text(edited)
    assert snapshot.read(path, environ) is None


def test_settings_with_a_secret_are_never_kept(tmp_path: Path) -> None:
    password, key = secrets.token_hex(16), secrets.token_hex(16)
    (tmp_path / "llm_key").write_text(key)
    (tmp_path / "llm_key").chmod(0o600)
    text = EXAMPLE.read_text().replace("# api_key_file = \"llm_api_key\"", 'api_key_file = "llm_key"', 1)
    path = _config(tmp_path, text)
    environ = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "CREDENTIALS_DIRECTORY": str(tmp_path)}
    settings = _keep(path, environ, need_secrets=True)  # the orchestrator's API key read: not kept
    assert settings.agents.orchestrator.api_key_value.get_secret_value() == key
    assert snapshot.read(path, environ) is None
    kept = _keep(path, environ, need_secrets=False)  # read-only: no secret read, kept
    assert snapshot.read(path, environ) is not None and kept.agents.orchestrator.api_key_value is None
    pg = text.replace("[database]\n", '[database]\nurl = "postgresql+psycopg://selfpub@127.0.0.1:5432/x"\n'
                                      'password_env = "DB_PW"\n')
    path.write_text(pg)
    environ["DB_PW"] = password
    assert password in _keep(path, environ).database_url  # the database password is read even read-only
    assert snapshot.read(path, environ) is None
    for written in (tmp_path / "cache").rglob("*"):
        if written.is_file():
            assert password not in written.read_text() and key not in written.read_text()


def test_no_cache_folder_that_can_be_written_keeps_nothing_and_breaks_nothing(tmp_path: Path) -> None:
    path = _config(tmp_path)
    (tmp_path / "cache").write_text("a file where the folder would be")
    environ = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert _keep(path, environ).persona == "default"
    assert snapshot.read(path, environ) is None
    assert snapshot.cache_folder({"CACHE_DIRECTORY": "/var/cache/selfpub:/x", "XDG_CACHE_HOME": "/y"}) == \
        Path("/var/cache/selfpub")
    assert snapshot.cache_folder({"HOME": "/home/u"}) == Path("/home/u/.cache/selfpub")
    assert snapshot.cache_folder({}) is None


# -- the model: a read-only command cannot tell the snapshot from a full load ------------------------

VARIANTS = {
    "example": None,
    "persona b": ("persona = \"default\"", "persona = \"b\""),
    "price": ("price_article = \"0.05\"", "price_article = \"0.07\""),
    "invalid": ("interval_minutes = 120", "interval_minutes = 0"),
    "not TOML": ("[budget]", "[budget"),
    "database password": ("[database]\n", "[database]\nurl = \"postgresql+psycopg://u@127.0.0.1:5432/x\"\n"
                                          "password_env = \"DB_PW\"\n"),
}
PASSWORD = secrets.token_hex(16)


class SnapshotModel(RuleBasedStateMachine):
    """Edits, damage and loads in any order; every read-only load is what a full load says at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.folder = Path(self.tmp.name)
        self.path = self.folder / "selfpub.toml"
        self.environ = {"XDG_CACHE_HOME": str(self.folder / "cache"), "DB_PW": PASSWORD}
        self.code = self.folder / "code.py"
        self.code.write_text("v = 0\n")
        self.real_code_files = snapshot.CODE_FILES
        snapshot.CODE_FILES = (*snapshot.CODE_FILES, self.code)
        self.write_config("example")
        self.reads_from_snapshot = 0

    def teardown(self) -> None:
        snapshot.CODE_FILES = self.real_code_files
        self.tmp.cleanup()

    @rule(variant=st.sampled_from(sorted(VARIANTS)))
    def write_config(self, variant: str) -> None:
        text = EXAMPLE.read_text()
        if VARIANTS[variant]:
            text = text.replace(*VARIANTS[variant], 1)
        self.path.write_text(text)

    @rule(name=st.sampled_from(["SELFPUB_BUDGET__MIN_BALANCE", "SELFPUB_PERSONA", "STATE_DIRECTORY"]),
          value=st.sampled_from(['"2"', '"q"', "-1", "/tmp/selfpub-model-state"]))
    def set_variable(self, name: str, value: str) -> None:
        self.environ[name] = value

    @rule(name=st.sampled_from(["SELFPUB_BUDGET__MIN_BALANCE", "SELFPUB_PERSONA", "STATE_DIRECTORY"]))
    def drop_variable(self, name: str) -> None:
        self.environ.pop(name, None)

    @rule()
    def edit_the_code(self) -> None:
        self.code.write_text(self.code.read_text() + "v += 1\n")

    @rule(how=st.sampled_from(["delete", "truncate", "garbage"]))
    def damage(self, how: str) -> None:
        kept = snapshot.snapshot_path(self.path, self.environ)
        if not kept.exists():
            return
        if how == "delete":
            kept.unlink()
        elif how == "truncate":
            kept.write_text(kept.read_text()[:100])
        else:
            kept.write_text('{"format": 1}')

    def _oracle(self) -> Any:  # noqa: ANN401 - the Settings, or the problems of the ConfigError
        try:
            return load_settings(self.path, dict(self.environ), need_secrets=False)
        except ConfigError as exc:
            return exc.problems

    @rule()
    def read_only_load(self) -> None:
        expected = self._oracle()
        app = AppContext(config_path=self.path, environ=dict(self.environ)).read_only(plain=True)
        try:
            got = app.settings
        except typer.Exit as exc:
            assert isinstance(expected, list) and exc.exit_code == 1
            return
        assert not isinstance(expected, list), expected
        if isinstance(got, Frozen):
            self.reads_from_snapshot += 1
            assert_same(got, expected)
        else:
            assert got == expected

    @rule(need_secrets=st.booleans())
    def full_load(self, need_secrets: bool) -> None:
        app = AppContext(config_path=self.path, environ=dict(self.environ), need_secrets=need_secrets)
        try:
            assert not isinstance(app.settings, Frozen)
        except typer.Exit:
            assert isinstance(self._oracle(), list)

    @invariant()
    def no_secret_is_ever_written(self) -> None:
        for written in (self.folder / "cache").rglob("*"):
            if written.is_file():
                assert PASSWORD not in written.read_text(errors="replace")


TestSnapshotModel = SnapshotModel.TestCase
TestSnapshotModel.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])


def test_the_model_reads_from_the_snapshot_at_all(tmp_path: Path) -> None:
    """The model above would pass with no snapshot ever read: one run where it must be."""
    model = SnapshotModel()
    try:
        model.read_only_load()  # full: writes it
        model.read_only_load()  # from the snapshot
        model.write_config("persona b")
        model.read_only_load()  # full again: another file
        model.read_only_load()
        assert model.reads_from_snapshot == 2
    finally:
        model.teardown()


# -- two processes --------------------------------------------------------------------------------

PERSONAS = ("alpha", "beta", "gamma")


def _churn(folder: str, seed: int, rounds: int, out: Any) -> None:  # noqa: ANN401 - a multiprocessing queue
    """Write a config no one wrote before (atomically), then load it read-only three times; `rounds` times.

    A load during which the file did not change (same bytes before and after; no bytes repeat) must
    return that file's persona, whether it came from the snapshot or not.
    """
    import random

    rng, path = random.Random(seed), Path(folder) / "selfpub.toml"
    environ = {"XDG_CACHE_HOME": str(Path(folder) / "cache")}
    checked = from_snapshot = 0
    try:
        for n in range(rounds):
            persona = rng.choice(PERSONAS)
            tmp = Path(folder) / f".w{seed}-{n}"
            tmp.write_text(EXAMPLE.read_text().replace('persona = "default"', f'persona = "{persona}"\n# {seed}-{n}', 1))
            os.replace(tmp, path)
            for _ in range(3):
                before = path.read_bytes()
                got = AppContext(config_path=path, environ=dict(environ)).read_only(plain=True).settings
                if path.read_bytes() == before:
                    checked += 1
                    from_snapshot += isinstance(got, Frozen)
                    if f'persona = "{got.persona}"\n'.encode() not in before:
                        raise AssertionError(f"read {got.persona!r} from a file that says {before[:300]!r}")
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails on it
        out.put(repr(exc))
        return
    out.put((checked, from_snapshot))


def test_two_processes_writing_and_reading_one_snapshot(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_churn, args=(str(tmp_path), seed, 30, out)) for seed in (1, 2)]
    for w in workers:
        w.start()
    results = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert all(isinstance(r, tuple) for r in results), results
    assert sum(c for c, _ in results) >= 30 and sum(s for _, s in results) >= 10, results
    _config(tmp_path, EXAMPLE.read_text().replace('persona = "default"', 'persona = "last"', 1))
    environ = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    for _ in range(2):  # a full load, then the snapshot it kept: both the last write
        assert AppContext(config_path=tmp_path / "selfpub.toml", environ=dict(environ)).read_only(
            plain=True).settings.persona == "last"
    assert isinstance(snapshot.read(tmp_path / "selfpub.toml", environ), Frozen)
