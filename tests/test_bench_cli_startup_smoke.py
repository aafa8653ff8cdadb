"""bench/bench_cli_startup.py at one run per command, so it cannot rot: every command runs and gets a figure."""

from __future__ import annotations

import io

from bench import bench_cli_startup


def test_the_cli_bench_times_every_read_only_command() -> None:
    out = io.StringIO()
    figures = bench_cli_startup.run(1, out=out)
    assert set(figures) == {"python -c pass", "selfpub --help", "selfpub config check", "selfpub ledger report",
                            "selfpub drafts list"}
    assert all(seconds > 0 for seconds in figures.values())
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("load average (1 min)")
    for name in ("--help", "config check", "ledger report", "drafts list"):
        [line] = [x for x in lines if x.startswith(f"selfpub {name} ")]
        assert "x python -c pass" in line and "goal < 300 ms" in line
