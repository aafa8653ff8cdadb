"""Every room's base error declares `retryable`, and the daemon's job policy reads only that (plus foreign types).

    retryable = True    the job runs again at its next tick
    retryable = False   permanent: recorded and skipped
    retryable = None    the daemon stops (exit 1) and systemd restarts it, like any undeclared bug
"""

from __future__ import annotations

import ast
import importlib
import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from daemon.service import PermanentJobError, RetryableJobError
from daemon.wiring import error_policy
from ledger.journal import LedgerError
from publishers.protocol import PublishError
from wallet.errors import WalletError

REPO = Path(__file__).resolve().parent.parent
ROOMS = ("config", "kernel", "ledger", "wallet", "payments", "publishers", "agents", "website", "daemon")
# Base errors of a room: classes deriving straight from one of these.
BUILTIN_BASES = {"Exception", "ValueError", "RuntimeError", "LookupError", "OSError"}


def base_errors() -> list[tuple[str, str]]:
    """(module, class) of every public exception class in the rooms whose base is a builtin exception."""
    found = []
    for room in ROOMS:
        for path in sorted((REPO / room).rglob("*.py")):
            rel = path.relative_to(REPO)
            if any(part.startswith("migrations") for part in rel.parts):
                continue  # Alembic env.py files run on import
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
            for node in tree.body:
                if (isinstance(node, ast.ClassDef) and not node.name.startswith("_")
                        and any(isinstance(b, ast.Name) and b.id in BUILTIN_BASES for b in node.bases)):
                    found.append((module, node.name))
    return found


BASES = base_errors()


def test_the_rooms_have_base_errors() -> None:
    names = {name for _, name in BASES}
    assert {"ConfigError", "LedgerError", "WalletError", "PublishError", "LLMError", "TaskError"} <= names


@pytest.mark.parametrize(("module", "name"), BASES, ids=[f"{m}.{n}" for m, n in BASES])
def test_every_room_base_error_declares_retryable(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, BaseException)
    assert "retryable" in vars(cls), f"{module}.{name} must declare retryable = True | False | None"
    assert vars(cls)["retryable"] in (True, False, None)


# -- the daemon's classification reads the attribute -------------------------------------------


class FlakyLedgerThing(LedgerError):
    """A room error the daemon has never heard of, marked passing."""

    retryable = True


class HopelessPublish(PublishError):
    """A room error the daemon has never heard of, marked permanent."""

    retryable = False


class WalletBug(WalletError):
    """Inherits retryable None from its room's base."""


@pytest.mark.parametrize(("exc", "kind"), [
    (FlakyLedgerThing("x"), "retryable"),
    (HopelessPublish("devto", "gone"), "permanent"),
    (WalletBug("x"), "bug"),
    (RetryableJobError("x"), "retryable"),
    (PermanentJobError("x"), "permanent"),
    (TimeoutError(), "retryable"),
    (OperationalError("SELECT 1", {}, Exception("gone")), "retryable"),
    (httpx.ConnectError("refused"), "retryable"),
    (sqlite3.OperationalError("database is locked"), "bug"),
    (KeyError("a bug"), "bug"),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v)
def test_the_job_policy_classifies_by_the_attribute(exc: BaseException, kind: str) -> None:
    assert error_policy().classify(exc) == kind


def test_a_subclass_can_change_its_rooms_answer() -> None:
    class Passing(WalletBug):
        retryable = True

    assert error_policy().classify(Passing("x")) == "retryable"
    assert error_policy().classify(WalletBug("x")) == "bug"


def test_the_policy_names_no_room_error() -> None:
    """daemon/wiring.py's policy lists only foreign types: every room error speaks for itself."""
    for t in error_policy().retryable:
        assert t.__module__.split(".")[0] not in ROOMS, t


@pytest.mark.parametrize(("error", "outcome", "exit_code"), [
    (FlakyLedgerThing("the ledger blinked"), "retry", 0),
    (HopelessPublish("devto", "gone"), "failed", 0),
    (WalletBug("unexpected"), "crashed", 1),
], ids=["retryable", "permanent", "none"])
async def test_a_running_service_follows_a_new_room_errors_word(sqlite_url, tmp_path, error, outcome, exit_code) -> None:
    """Errors the daemon's code never names: the job run is recorded by what the class says."""
    from ledger.funding import deposit
    from tests.daemon.test_service import Recorder, make_service

    svc = make_service(sqlite_url, tmp_path, Recorder([], error=error))
    deposit(svc.journal, 10_000_000)
    await svc.cycle_job()
    assert [e.outcome for e in svc.reader.recent_errors()] == [outcome]
    assert svc.exit_code == exit_code
