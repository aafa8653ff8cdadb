"""The rooms import only what docs/DESIGN.md allows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOMS = ("kernel", "config", "ledger", "wallet", "payments", "publishers", "agents", "website", "daemon")
ALLOWED = {
    "kernel": set(),  # the shared kernel: every room may import it, it imports none
    "config": {"kernel"},
    "ledger": {"kernel", "config"},
    "wallet": {"kernel", "config", "ledger"},
    "payments": {"kernel", "config", "ledger", "wallet"},
    "publishers": {"kernel", "config"},
    "agents": {"kernel", "config", "ledger", "publishers"},
    "website": {"kernel", "config", "ledger", "publishers", "agents"},  # read functions only: it writes nothing
    "daemon": set(ROOMS),
}
# agents may use publishers' protocol only, not an adapter.
AGENTS_MAY_IMPORT_FROM_PUBLISHERS = {"publishers", "publishers.protocol"}


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every absolute module imported by a file, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found


def room_files(room: str) -> list[Path]:
    return sorted((REPO / room).rglob("*.py"))


@pytest.mark.parametrize("room", ROOMS)
def test_room_imports_only_what_design_allows(room: str) -> None:
    bad = []
    for path in room_files(room):
        for module, line in imports_of(path):
            top = module.split(".")[0]
            if top in ROOMS and top != room and top not in ALLOWED[room]:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
            if room == "agents" and top == "publishers" and module not in AGENTS_MAY_IMPORT_FROM_PUBLISHERS:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module} (agents use the protocol only)")
    assert not bad, "import arrows broken:\n" + "\n".join(bad)


def test_the_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from daemon.cli import app\nimport wallet.chain\n")
    assert [m for m, _ in imports_of(bad)] == ["daemon.cli", "wallet.chain"]


def test_only_daemon_reads_the_environment() -> None:
    offenders = []
    for room in ROOMS:
        if room in ("daemon", "config"):
            continue  # config's loader is handed the environment by daemon/
        for path in room_files(room):
            src = path.read_text(encoding="utf-8")
            for needle in ("os.environ", "os.getenv", "load_settings("):
                if needle in src:
                    offenders.append(f"{path.relative_to(REPO)} uses {needle}")
    assert not offenders, "\n".join(offenders)
