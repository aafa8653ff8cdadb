"""Claim owners: a holder on this kernel whose process is gone is provably dead; anything else is presumed alive."""

from __future__ import annotations

import subprocess
import sys

import pytest

from publishers import lease

pytestmark = pytest.mark.skipif(not lease.start_time(1), reason="needs Linux /proc")


def _owner_of(pid: int) -> str:
    here = lease.this_process().split("/")
    return "/".join([*here[:3], str(pid), lease.start_time(pid)])


def test_a_living_process_is_not_dead_and_a_reaped_one_is():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    owner = _owner_of(child.pid)
    try:
        assert not lease.provably_dead(owner)
        assert not lease.provably_dead(lease.this_process())
    finally:
        child.kill()
        child.wait()
    assert lease.provably_dead(owner)


def test_a_reused_pid_does_not_make_the_old_owner_alive():
    here = lease.this_process().split("/")
    reused = "/".join([*here[:4], str(int(here[4]) - 1)])  # our pid, another start time
    assert lease.provably_dead(reused)


@pytest.mark.parametrize("owner", ["otherhost/another-boot/pid:[1]/1/1", "host/no/shape", "", "a/b/c/d/e"])
def test_what_cannot_be_proven_is_presumed_alive(owner):
    assert not lease.provably_dead(owner)


def test_describe_names_pid_and_host():
    assert lease.describe("vm/boot/pid:[4]/123/99") == "pid 123 on vm" and lease.describe(None) == "an unknown process"
