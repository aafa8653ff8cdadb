"""The SQLite WAL written back to disk in a background thread, so a writer's checkpoint does not wait for it.

In WAL mode with synchronous=NORMAL a commit only appends its pages to the WAL
(in the OS's cache); the checkpoint that copies them into the database first
fsyncs the WAL. Run by the committing writer (wal_autocheckpoint), that fsync
is nearly all of the checkpoint: on the 1M-posting bench ledger the WAL's
fdatasync (~40 MB) takes 116-155 ms, and the checkpoint after it ~4 ms; it
stalls one commit every ~500 reserve+commit pairs. Written back here, the
writer's I/O wait halves (218-281 -> 82-120 us a pair; 13-25% more pairs/s
with a CPU to spare; on a saturated machine it waits for a CPU instead).

Here every EVERY_WRITES commits wake a thread that fdatasyncs the WAL file:
no SQLite lock, no page copied, only the OS writing back what it holds, beside
the writer. The checkpoint still runs where and when it did, and still fsyncs;
nothing a commit writes or guarantees changes (data reaches the disk sooner).

    wal_writeback(path)     the process's WalWriteback of that database file (one a file)
        .wrote()            after each commit: cheap; wakes the thread every EVERY_WRITES
        .syncs              write-backs done so far

The thread starts on demand and ends after IDLE_SECONDS without a wake-up, so
a short command or a test leaves nothing running. The WAL is opened for each
write-back and closed after: SQLite locks the database and -shm files, never
the -wal, so closing it releases none of this process's locks.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# Commits between write-backs: ~1,000-1,600 WAL pages (4-6 MB) at the ledger's 3-16 pages a commit,
# about a tenth of the checkpoint interval (kernel.dbapi.SQLITE_WAL_AUTOCHECKPOINT).
EVERY_WRITES = 100
IDLE_SECONDS = 2.0


class WalWriteback:
    """fdatasync of one SQLite database's WAL from a background thread, woken by its writers."""

    def __init__(self, database: Path | str, *, every: int = EVERY_WRITES, idle: float = IDLE_SECONDS):
        self.wal = Path(f"{Path(database).absolute()}-wal")
        self.every = every
        self.idle = idle
        self.syncs = 0
        self._writes = 0
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wrote(self) -> None:
        """Count one commit; every `every` commits, have the thread write the WAL back."""
        self._writes += 1  # a lost increment between threads only shifts the next write-back
        if self._writes % self.every:
            return
        with self._lock:
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"wal-writeback {self.wal.name}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._wake.wait(self.idle):
                with self._lock:
                    if not self._wake.is_set():  # idle: end; the next wake-up starts a new thread
                        self._thread = None
                        return
            self._wake.clear()
            try:
                fd = os.open(self.wal, os.O_RDONLY)
            except FileNotFoundError:
                continue  # the last connection closed: SQLite checkpointed and removed the WAL
            except OSError as exc:
                log.warning("WAL write-back: cannot open the WAL", extra={"path": str(self.wal), "error": str(exc)})
                continue
            try:
                (getattr(os, "fdatasync", None) or os.fsync)(fd)  # macOS has no fdatasync
                self.syncs += 1
            except OSError as exc:  # the checkpoint still fsyncs it: nothing is lost but the head start
                log.warning("WAL write-back failed", extra={"path": str(self.wal), "error": str(exc)})
            finally:
                os.close(fd)


_BY_FILE: dict[Path, WalWriteback] = {}
_REGISTRY = threading.Lock()


def wal_writeback(database: Path | str) -> WalWriteback:
    """The WalWriteback of the SQLite database file at `database` in this process (made on first use)."""
    key = Path(database).absolute()
    with _REGISTRY:
        found = _BY_FILE.get(key)
        if found is None:
            found = _BY_FILE[key] = WalWriteback(key)
        return found
