"""Who holds an outbox claim, and whether that holder is provably gone.

    owner = "<host>/<boot id>/<pid namespace>/<pid>/<start time>"
             '------- same kernel? -------'  '-- same process? --'

A claim's lease normally ends by time: a holder renews it while its remote call
is in flight, and only an expired lease may be taken over. A process that was
SIGKILLed cannot renew, but waiting out its lease would hold a restarted daemon
back for minutes, so a holder on *this* kernel and pid namespace whose pid is
gone (or now belongs to a process started at another time: pid reuse) counts as
expired at once. Anything we cannot prove (another host, another container, no
/proc) is presumed alive: the lease decides.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path

PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@cache
def _kernel() -> tuple[str, str]:
    """(boot id, pid namespace) of this process; empty strings where the OS does not say."""
    boot = _read(PROC / "sys" / "kernel" / "random" / "boot_id")
    try:
        pidns = os.readlink(PROC / "self" / "ns" / "pid")
    except OSError:
        pidns = ""
    return boot, pidns


def start_time(pid: int) -> str:
    """The start time (clock ticks after boot) of process `pid`, or "" when there is no such process."""
    stat = _read(PROC / str(pid) / "stat")
    if not stat:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def this_process() -> str:
    """The owner string of the calling process."""
    boot, pidns = _kernel()
    pid = os.getpid()
    return "/".join((socket.gethostname()[:64], boot, pidns, str(pid), start_time(pid)))


def describe(owner: str | None) -> str:
    """A short human form of an owner string: "pid 123 on host"."""
    parts = (owner or "").split("/")
    return f"pid {parts[3]} on {parts[0]}" if len(parts) == 5 else (owner or "an unknown process")


def provably_dead(owner: str) -> bool:
    """True only when `owner` ran on this kernel and pid namespace and that process no longer exists."""
    parts = owner.split("/")
    if len(parts) != 5:
        return False
    _host, boot, pidns, pid, started = parts
    here_boot, here_pidns = _kernel()
    if not boot or not pidns or not started or (boot, pidns) != (here_boot, here_pidns) or not pid.isdigit():
        return False
    return start_time(int(pid)) != started
