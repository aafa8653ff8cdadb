"""kernel.locks.TryLock: one holder per name and database, across processes; it dies with its holder."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kernel.db import make_engine
from kernel.locks import TryLock

SPACE = 0x7E57


def test_one_holder_per_name_and_names_are_independent(db_url: str, tmp_path: Path) -> None:
    e1, e2 = make_engine(db_url), make_engine(db_url)
    a, b = TryLock(e1, SPACE, "x", tmp_path / "x.lock"), TryLock(e2, SPACE, "x", tmp_path / "x.lock")
    other = TryLock(e2, SPACE, "y", tmp_path / "y.lock")
    try:
        assert a.acquire() and a.still_held()
        assert not b.acquire() and not b.still_held()
        assert other.acquire()
        a.release()
        assert not a.still_held() and b.acquire()
    finally:
        for lock in (a, b, other):
            lock.release()
        e1.dispose()
        e2.dispose()


def test_a_killed_holder_frees_the_lock(db_url: str, tmp_path: Path) -> None:
    """Another process takes the lock and is killed while holding it: the lock is free at once."""
    path = tmp_path / "held.lock"
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "from kernel.db import make_engine\n"
        "from kernel.locks import TryLock\n"
        f"lock = TryLock(make_engine({db_url!r}), {SPACE}, 'held', Path({str(path)!r}))\n"
        "assert lock.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    engine = make_engine(db_url)
    lock = TryLock(engine, SPACE, "held", path)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert not lock.acquire()
        proc.kill()
        proc.wait(timeout=10)
        for _ in range(50):  # the server notices the dropped session within moments
            if lock.acquire():
                break
            time.sleep(0.1)
        assert lock.held
    finally:
        lock.release()
        proc.kill()
        engine.dispose()


def test_an_in_memory_database_uses_a_process_lock() -> None:
    engine = make_engine("sqlite://")
    a, b = TryLock(engine, SPACE, "mem", None), TryLock(engine, SPACE, "mem", None)
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire()
    b.release()
