"""Run every benchmark in turn and print its figures (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "bench_ledger.py",
    "bench_cli_startup.py",
    "bench_wallet_scan.py",
    "bench_paid_reads.py",
    "bench_llm_overhead.py",
    "bench_agents.py",
    "bench_overhead_share.py",
    "bench_accuracy.py",
    "bench_soak.py",
]


def main() -> int:
    """Run each bench with this interpreter; exit non-zero if any failed."""
    failed = []
    for name in BENCHES:
        print(f"== {name}", flush=True)
        if subprocess.call([sys.executable, str(HERE / name)]) != 0:
            failed.append(name)
    print("== side_by_side/run.py (needs: bash bench/side_by_side/setup_crewai.sh)", flush=True)
    if subprocess.call(["bash", str(HERE / "side_by_side" / "setup_crewai.sh")]) == 0:
        if subprocess.call([sys.executable, str(HERE / "side_by_side" / "run.py")]) != 0:
            failed.append("side_by_side/run.py")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
