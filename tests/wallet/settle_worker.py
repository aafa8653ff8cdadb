"""One settle run in a process of its own, for the two-process tests.

    python -m tests.wallet.settle_worker CONFIG BARRIER_DIR [--pause-after-plan]

Builds the wallet as the daemon does (daemon.wiring_wallet) from CONFIG and settles once. With
--pause-after-plan it writes BARRIER_DIR/planned once it has planned and waits for BARRIER_DIR/go
before paying: the test forces the overlap "B has planned, A runs" instead of hoping for it.
Prints the report as one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

WAIT_SECONDS = 120


def main(argv: list[str]) -> int:
    from config import load_settings
    from daemon.state import open_state
    from daemon.wiring_wallet import build_wallet
    from wallet import settlement

    config, barrier = Path(argv[0]), Path(argv[1])
    settings = load_settings(config, os.environ)
    journal = open_state(settings).journal
    if "--pause-after-plan" in argv:
        planned = settlement.Settler.plan

        def plan_then_wait(self):  # noqa: ANN001, ANN202
            out = planned(self)
            (barrier / "planned").write_text(str(os.getpid()))
            deadline = time.monotonic() + WAIT_SECONDS
            while not (barrier / "go").exists():
                if time.monotonic() > deadline:
                    raise SystemExit("no go within the wait")
                time.sleep(0.05)
            return out

        settlement.Settler.plan = plan_then_wait
    report = build_wallet(settings, journal).settle()
    print(json.dumps({
        "busy": getattr(report, "busy", False), "note": report.note,
        "paid": [[p.status, p.amount_ucr, p.tx_hash] for p in report.paid],
        "refused": [x.reason for x in report.refused],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
