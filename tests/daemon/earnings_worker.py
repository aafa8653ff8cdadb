"""The daemon's earnings job in a loop, in a process of its own: `python -m tests.daemon.earnings_worker CONFIG STOP`.

    real_jobs(settings, ...).earnings     what the daemon's scheduler runs: tips from the chain (the
                                          wallet's scan), then engagement from the platforms
    open_state(settings)                  first, as the daemon's start does (every room's tables at head)
    run it back to back until the file STOP exists, then once more (every tip sent before STOP is booked)
    print one JSON line: {"runs": n}; an exception ends the process with a traceback and exit code 1
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path


async def earnings_until(config: Path, stop: Path) -> int:
    """Run the earnings job until `stop` exists, then once more; how many runs."""
    from config.loader import load_settings
    from daemon.threads import call_job
    from daemon.state import open_state
    from daemon.wiring import real_jobs

    settings = load_settings(config, {})
    state = open_state(settings)
    jobs = real_jobs(settings, state.journal, state.budget)
    runs = 0
    try:
        while not stop.exists():
            await call_job(jobs.earnings)
            runs += 1
        await call_job(jobs.earnings)
    finally:
        state.engine.dispose()
    return runs + 1


if __name__ == "__main__":
    print(json.dumps({"runs": asyncio.run(earnings_until(Path(sys.argv[1]), Path(sys.argv[2])))}), flush=True)
