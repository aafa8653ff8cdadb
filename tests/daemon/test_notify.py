"""sd_notify over a real unix datagram socket."""

from __future__ import annotations

import os

from daemon.notify import Notifier


def test_notifier_sends_each_state_to_the_socket(notify_listener) -> None:
    n = Notifier({"NOTIFY_SOCKET": notify_listener.path, "WATCHDOG_USEC": "3000000"})
    assert n.enabled and n.watchdog_interval() == 1.5
    n.ready("RUNNING | balance 1.000000 cr")
    n.status("PAUSED (low)\nsecond line")
    n.watchdog()
    n.reloading()
    n.stopping()
    msgs = notify_listener.drain()
    assert msgs[0] == "READY=1\nSTATUS=RUNNING | balance 1.000000 cr"
    assert msgs[1] == "STATUS=PAUSED (low) second line"  # always one line
    assert msgs[2] == "WATCHDOG=1"
    assert msgs[3].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert msgs[4] == "STOPPING=1"


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier({})
    assert not n.enabled and n.ready() is False and n.watchdog_interval() is None


def test_watchdog_meant_for_another_pid_is_ignored(notify_listener) -> None:
    n = Notifier({"NOTIFY_SOCKET": notify_listener.path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert n.watchdog_interval() is None


def test_a_vanished_socket_does_not_raise(tmp_path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.status("x") is False
