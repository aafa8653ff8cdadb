"""Every third-party module that tests/ and bench/ import comes from a distribution pyproject.toml declares
(the dependencies or an extra), so a clone's `make test` installs what its tests need."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"kernel", "config", "ledger", "wallet", "payments", "publishers", "agents", "website", "daemon", "tests",
               "bench"}
# Scripts that run in an environment of their own, and the file that installs it.
OWN_ENVIRONMENT = {Path("bench/side_by_side/crew.py"): Path("bench/side_by_side/setup_crewai.sh")}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def distributions() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions that provide it (one scan per run: it is slow)."""
    return packages_distributions()


@cache
def declared() -> frozenset[str]:
    """Normalised names of every distribution pyproject.toml asks for (dependencies and every extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    return frozenset(_norm(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) for r in reqs)


def _local(module: str, file: Path) -> bool:
    """A sibling module of a script (bench scripts put their own folder on sys.path)."""
    here = file.parent
    return (here / f"{module}.py").exists() or (here / module / "__init__.py").exists()


def third_party_imports(file: Path) -> set[str]:
    """Top-level names of the modules a source file imports that are neither the stdlib nor our own."""
    names = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in FIRST_PARTY and not _local(n, file)}


PRODUCT_ROOMS = sorted(FIRST_PARTY - {"tests", "bench"})
PRODUCT = sorted(p.relative_to(ROOT) for base in PRODUCT_ROOMS if (ROOT / base).is_dir()
                 for p in (ROOT / base).rglob("*.py"))
SOURCES = sorted(p.relative_to(ROOT) for base in ("tests", "bench") for p in (ROOT / base).rglob("*.py")
                 if "node_modules" not in p.parts)


def test_sources_are_found() -> None:
    assert Path("tests/conftest.py") in SOURCES and any(p.parts[0] == "bench" for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=str)
def test_every_third_party_import_is_declared(path: Path) -> None:
    modules = third_party_imports(ROOT / path)
    if path in OWN_ENVIRONMENT:
        installer = (ROOT / OWN_ENVIRONMENT[path]).read_text(encoding="utf-8")
        assert [m for m in modules if m not in installer] == []
        return
    dists = distributions()
    wanted = declared()
    undeclared = {m: dists.get(m, ["(not installed)"]) for m in modules
                  if not any(_norm(d) in wanted for d in dists.get(m, []))}
    assert undeclared == {}, f"declare these in pyproject.toml's [test] extra (or stop importing them): {undeclared}"


@pytest.mark.parametrize("path", PRODUCT, ids=str)
def test_product_imports_are_runtime_dependencies(path: Path) -> None:
    """A product module's imports are installed by `pip install selfpub`, not only by the test extra."""
    dists = distributions()
    wanted = _runtime()
    undeclared = {m: dists.get(m, ["(not installed)"]) for m in third_party_imports(ROOT / path)
                  if not any(_norm(d) in wanted for d in dists.get(m, []))}
    assert undeclared == {}, f"declare these in pyproject.toml's [project] dependencies: {undeclared}"


@cache
def _runtime() -> frozenset[str]:
    """Normalised names of [project] dependencies only (what a user's `pip install` brings)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return frozenset(_norm(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) for r in project["dependencies"])


def test_an_undeclared_import_is_caught(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text("import httpx\nimport json\nfrom config import money\nimport not_a_real_dist_xyz\n")
    assert third_party_imports(source) == {"httpx", "not_a_real_dist_xyz"}
    assert "httpx" in declared() and "not-a-real-dist-xyz" not in declared()
