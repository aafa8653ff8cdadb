"""A second process for the hold race test: expire stale holds (importable, no pytest).

    python -m tests.ledger.hold_worker DB_URL TTL_SECONDS   prints how many holds it expired
"""

from __future__ import annotations

import sys

from kernel.db import make_engine
from config.settings import BudgetSettings
from ledger import Budget, Journal


def main(url: str, ttl: int) -> None:
    """Run the sweep the gate runs; blocks while another transaction holds a stale hold's row."""
    engine = make_engine(url)
    print(Budget(Journal(engine), BudgetSettings(reservation_ttl_seconds=ttl)).expire_stale(), flush=True)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
