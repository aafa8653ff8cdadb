"""CLI start-up: each read-only command's wall time, and its ratio to `python -c pass`.

    .venv/bin/python bench/bench_cli_startup.py [--runs 7]

Makes a fresh config with `selfpub init` in a temporary folder and a small
ledger in it (a deposit and a few compute calls), runs every command once to
migrate the database and write the bytecode caches and the settings snapshot
(config/snapshot.py, kept in that folder), then times each command
`--runs` times as a user would run it (the venv's `selfpub` script, a new
process each time) and prints the median, the ratio to `python -c pass`
measured in the same run, and the goal (< 0.3 s). The 1-minute load average
is printed with the figures: on a busy 2-core box every process starts slower.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 0.3
COMMANDS = (
    ("--help",),
    ("config", "check"),
    ("ledger", "report"),
    ("drafts", "list"),
)


def wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one process takes, from spawn to exit (it must succeed)."""
    began = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=cwd)
    return time.perf_counter() - began


def median_wall(argv: list[str], env: dict[str, str], cwd: Path, runs: int) -> float:
    """The median of `runs` timings."""
    return statistics.median(wall(argv, env, cwd) for _ in range(runs))


def small_ledger(selfpub: str, env: dict[str, str], cwd: Path) -> None:
    """A deposit and a few compute calls: a ledger report with something in it."""
    subprocess.run([selfpub, "ledger", "deposit", "5"], check=True, capture_output=True, env=env, cwd=cwd)
    code = (
        "from daemon.context import AppContext\n"
        "from ledger import Entry, compute_account, provider_account\n"
        "app = AppContext()\n"
        "for i in range(20):\n"
        "    app.journal.post('compute', [Entry(compute_account('writer'), 1000 + i), "
        "Entry(provider_account('embedded'), -1000 - i)], idempotency_key=f'bench-{i}', task_id=f't{i // 4}')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env, cwd=cwd)


def run(runs: int, out=sys.stdout) -> dict[str, float]:  # noqa: ANN001
    """Measure and print every figure; returns seconds by command."""
    selfpub = str(Path(sys.executable).with_name("selfpub"))
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "SELFPUB_CONFIG": str(home / "selfpub.toml"), "XDG_CACHE_HOME": str(home / "cache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # timed with bytecode cached, as a user's second run is
        subprocess.run([selfpub, "init", str(home)], check=True, capture_output=True, env=env, cwd=home)
        small_ledger(selfpub, env, home)
        for args in COMMANDS:  # migrate once, write every bytecode cache
            wall([selfpub, *args], env, home)
        base = median_wall([sys.executable, "-c", "pass"], env, home, runs)
        figures["python -c pass"] = base
        print(f"load average (1 min) {os.getloadavg()[0]:.2f}; {runs} runs each, median", file=out)
        print(f"{'python -c pass':<28} {base * 1000:7.0f} ms", file=out)
        for args in COMMANDS:
            seconds = median_wall([selfpub, *args], env, home, runs)
            name = "selfpub " + " ".join(args)
            figures[name] = seconds
            verdict = "OK" if seconds < GOAL_S else "MISSED"
            print(f"{name:<28} {seconds * 1000:7.0f} ms   {seconds / base:5.1f}x python -c pass   "
                  f"(goal < {GOAL_S * 1000:.0f} ms)  {verdict}", file=out)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    run(args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
