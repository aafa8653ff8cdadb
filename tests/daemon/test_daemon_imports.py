"""No import circle among daemon/ modules (issue 13): service.py and http.py share daemon/threads.py instead.

Every import counts, a deferred one inside a function too (a circle hidden in a function is still a
circle); only `if TYPE_CHECKING:` blocks are left out, since they never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of `package` under root -> the modules of the same package it imports."""
    paths = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skipped = {id(n) for block in ast.walk(tree) if _type_checking_only(block) for n in ast.walk(block)}
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            deps |= {t for t in targets if t in paths and t != name}
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk meets, each as the path that closes it."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def test_no_import_circle_among_daemon_modules() -> None:
    graph = import_graph(REPO, "daemon")
    assert "daemon.threads" in graph and "daemon.http" in graph
    assert cycles(graph) == [], "import circles in daemon/:\n" + "\n".join(" -> ".join(c) for c in cycles(graph))


def test_the_check_sees_a_circle_even_inside_a_function(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import g\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import g\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.c"] == set()  # a type-only import is no circle
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_the_status_server_loads_without_the_service() -> None:
    """daemon.http alone, in a fresh interpreter, does not pull in daemon.service."""
    code = "import sys, daemon.http; sys.exit('daemon.service' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr or "daemon.http imported daemon.service"


def test_the_demo_is_reached_through_its_package_only() -> None:
    """daemon/demo/ is a sub-package: the rest of daemon/ imports `daemon.demo` (run_demo), never its modules."""
    graph = import_graph(REPO, "daemon")
    assert {"daemon.demo", "daemon.demo.loop", "daemon.demo.localpds"} <= set(graph)
    inside = [m for m in graph if m.startswith("daemon.demo.")]
    reaching_in = [f"{m} imports {d}" for m, deps in graph.items() if m != "daemon.demo" and not m.startswith("daemon.demo.")
                   for d in deps if d in inside]
    assert not reaching_in, "\n".join(reaching_in)
