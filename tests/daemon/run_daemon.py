"""`selfpub run` with the test-only knobs the command does not have: a fake cycle and fast job intervals.

    python -m tests.daemon.run_daemon --config C [--stop-grace S] [--fast-seconds F]
                                      [--fake-cycle-seconds T [--fake-cycle-cost CREDITS]]

It runs the command's own `serve` (logging, tracing, reload, exit codes), handing the service
the injection points: `fast_seconds`, and with --fake-cycle-seconds the jobs of
tests/daemon/fake_cycle.py instead of the orchestrator and wallet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import typer

from daemon.commands.run_cmd import serve
from daemon.context import AppContext
from kernel.money import parse_credits
from tests.daemon.fake_cycle import fake_jobs


def main(argv: list[str] | None = None) -> int:
    """Parse the test options and serve; the process's exit code."""
    parser = argparse.ArgumentParser(prog="run_daemon")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--stop-grace", type=float, default=60.0)
    parser.add_argument("--fast-seconds", type=float, default=None)
    parser.add_argument("--fake-cycle-seconds", type=float, default=None)
    parser.add_argument("--fake-cycle-cost", type=parse_credits, default=0)
    args = parser.parse_args(argv)
    jobs = fake_jobs(args.fake_cycle_seconds, args.fake_cycle_cost) if args.fake_cycle_seconds is not None else None
    try:
        return serve(AppContext(config_path=args.config), stop_grace=args.stop_grace, fast_seconds=args.fast_seconds,
                     jobs=jobs)
    except typer.Exit as exc:  # a config problem, already printed
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
