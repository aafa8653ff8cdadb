"""A clone tests itself: no test path leaves the repository.

Static half: every path expression in tests/ that starts from `__file__` (Path(__file__),
.parent, .parents[N], / "..", os.path.dirname/join, names bound to such paths, REPO
imported from another test module) is evaluated, and must stay inside the repository;
no string literal names a place beside it. A line that has to name that place (the guards)
says why with a `# outside-ok:` comment. The runtime half is the audit hook in
tests/conftest.py (any file opened beside the repository fails the test).
"""

from __future__ import annotations

import ast
import os
from functools import cache
from pathlib import Path

import pytest

from tests import conftest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SOURCES = sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts and p.relative_to(TESTS).parts[0] != "data")
# A line that must name the place beside the repository (the guards themselves) says so with this comment.
PRAGMA = "# outside-ok:"
PATH_CALLS = {"Path", "PurePath", "PosixPath"}
SAME_PATH_METHODS = {"resolve", "absolute", "expanduser", "abspath", "realpath", "normpath", "fspath", "str"}


def _inside(path: str) -> bool:
    return path == str(ROOT) or path.startswith(str(ROOT) + os.sep)


class PathEval:
    """Evaluates the path expressions of one test module that derive from its own location."""

    def __init__(self, file: Path):
        self.file = file
        self.env: dict[str, str] = {}

    def value(self, node: ast.AST) -> str | None:
        """The absolute path an expression stands for, or None when it does not come from __file__."""
        match node:
            case ast.Name(id="__file__"):
                return str(self.file)
            case ast.Name(id=name):
                return self.env.get(name)
            case ast.Attribute(value=inner, attr="parent"):
                return self._join(self.value(inner), "..")
            case ast.Subscript(value=ast.Attribute(value=inner, attr="parents"), slice=ast.Constant(value=int(n))):
                return self._join(self.value(inner), *[".."] * (n + 1))
            case ast.BinOp(left=left, op=ast.Div(), right=ast.Constant(value=str(part))):
                return self._join(self.value(left), part)
            case ast.Call(func=ast.Name(id=fn), args=[arg]) if fn in PATH_CALLS | {"str"}:
                return self.value(arg)
            case ast.Call(func=ast.Attribute(attr="dirname"), args=[arg]):
                return self._join(self.value(arg), "..")
            case ast.Call(func=ast.Attribute(attr=fn), args=[arg]) if fn in SAME_PATH_METHODS:
                return self.value(arg)
            case ast.Call(func=ast.Attribute(value=inner, attr=fn), args=[]) if fn in SAME_PATH_METHODS:
                return self.value(inner)
            case ast.Call(func=ast.Attribute(value=inner, attr="joinpath"), args=parts):
                return self._join(self.value(inner), *[p.value for p in parts if isinstance(p, ast.Constant)])
            case ast.Call(func=ast.Attribute(attr="join"), args=[first, *rest]):
                return self._join(self.value(first), *[p.value for p in rest if isinstance(p, ast.Constant)])
        return None

    @staticmethod
    def _join(base: str | None, *parts: object) -> str | None:
        if base is None or not all(isinstance(p, str) for p in parts):
            return None
        return os.path.normpath(os.path.join(base, *parts))  # type: ignore[arg-type]


def _env(file: Path, tree: ast.Module, lines: list[str]) -> dict[str, str]:
    """The names a module binds to paths derived from its location (imports from other test modules followed).

    A name bound on a PRAGMA line is left out: it names the place beside the repository on purpose.
    """
    ev = PathEval(file)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tests":
            source = ROOT / Path(*node.module.split("."))
            source = source / "__init__.py" if source.is_dir() else source.with_suffix(".py")
            if source.is_file() and source != file:
                imported = _module_env(source)
                ev.env.update({a.asname or a.name: imported[a.name] for a in node.names if a.name in imported})
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and PRAGMA not in lines[node.lineno - 1]):
            if (value := ev.value(node.value)) is not None:
                ev.env[node.targets[0].id] = value
    return ev.env


@cache
def _module_env(file: Path) -> dict[str, str]:
    text = file.read_text(encoding="utf-8")
    return _env(file, ast.parse(text), text.splitlines())


def climbs_out(file: Path, source: str | None = None) -> list[str]:
    """Each place in one test module (or in `source`, as if it were that module) where a path leaves the repository."""
    text = file.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text)
    lines = text.splitlines()
    ev = PathEval(file)
    ev.env = _env(file, tree, lines)
    beside = str(ROOT.parent).rstrip(os.sep) + os.sep  # outside-ok: what "beside the repository" means
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr) or isinstance(node, ast.Name) or PRAGMA in lines[node.lineno - 1]:
            continue
        path = ev.value(node)
        if path is not None and not _inside(path):
            found.append(f"line {node.lineno}: {ast.unparse(node)} -> {path}")
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and beside != os.sep
                and node.value.startswith(beside) and not _inside(node.value)):
            found.append(f"line {node.lineno}: the literal {node.value!r} names a place beside the repository")
    return found


def test_the_sources_are_found() -> None:
    assert len(SOURCES) > 50 and Path(__file__) in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(TESTS)) for p in SOURCES])
def test_no_test_path_leaves_the_repository(path: Path) -> None:
    assert climbs_out(path) == []


CLIMBING = [
    'X = Path(__file__).resolve().parents[3] / "specs" / "api.json"',
    "X = Path(__file__).parent.parent.parent.parent",
    'X = Path(__file__).resolve().parent / ".." / ".." / ".." / "elsewhere"',
    'REPO = Path(__file__).resolve().parents[2]\nX = REPO.parent / "corpus"',
    'X = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "corpus")',
    f"X = Path({str(ROOT.parent / 'corpus')!r})",  # outside-ok: an example of what is caught
]
STAYING = [
    'X = Path(__file__).resolve().parents[1] / "data" / "specs" / "api.json"',
    'REPO = Path(__file__).resolve().parents[2]\nX = REPO / "tests" / "data"',
    'X = Path(__file__).parent / "a" / ".." / "b"',
    'X = tmp_path.parents[5] / "anything"',  # not derived from the module's location: not a repository path
    'TARGET = "/../etc/passwd"',  # an HTTP target, not a file
]


@pytest.mark.parametrize("source", CLIMBING)
def test_a_path_climbing_out_is_caught(source: str) -> None:
    assert climbs_out(TESTS / "publishers" / "example.py", source), source


@pytest.mark.parametrize("source", STAYING)
def test_a_path_inside_passes(source: str) -> None:
    assert climbs_out(TESTS / "publishers" / "example.py", source) == []


@pytest.mark.skipif(not conftest.WATCHING, reason="the repository sits right in a temp or system folder")
def test_the_runtime_guard_records_a_file_opened_beside_the_repository() -> None:
    beside = ROOT.parent / f"not-{ROOT.name}-{os.getpid()}" / "spec.json"  # outside-ok: the guard must see it
    before = len(conftest.OUTSIDE)
    with pytest.raises(FileNotFoundError):
        beside.open()  # the audit event fires before the file system says no
    caught = conftest.OUTSIDE[before:]
    del conftest.OUTSIDE[before:]  # caught on purpose: this test's own teardown must not fail for it
    assert caught == [str(beside)]


def test_the_runtime_guard_lets_the_usual_places_through(tmp_path: Path) -> None:
    import sys
    import tempfile

    assert conftest.outside_repository(str(ROOT / "tests" / "data" / "specs" / "forem-api-v1.json")) is False
    assert conftest.outside_repository(str(tmp_path / "x")) is False
    assert conftest.outside_repository(os.path.join(tempfile.gettempdir(), "x")) is False
    assert conftest.outside_repository(os.path.join(sys.prefix, "lib", "x.py")) is False
    assert conftest.outside_repository(os.path.join(sys.base_prefix, "lib", "x.py")) is False
    assert conftest.outside_repository("/proc/self/status") is False
    beside = ROOT.parent  # outside-ok: the places the guard judges
    assert conftest.outside_repository(str(beside / ".hypothesis" / "x")) is False  # tool state beside it
    if conftest.WATCHING:
        assert conftest.outside_repository(str(beside / "corpus" / "feeds" / "a.xml")) is True
