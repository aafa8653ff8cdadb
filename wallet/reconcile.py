"""Reconciliation: the ledger's assets:wallet against balanceOf on chain, stored for reports.

drift = chain balance (rounded down to ucr) - ledger assets:wallet.
Sub-micro-credit dust kept by wallet.units is reported beside it: dust that
adds up to whole micro-credits shows as a small positive drift. Tips in
blocks not yet confirmed show as a transient positive drift until scanned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from wallet.models import Dust, Reconciliation

RECON = Reconciliation.__table__
DUST = Dust.__table__


@dataclass(frozen=True)
class ReconcileResult:
    """One stored comparison of ledger and chain."""

    time: datetime
    chain_id: int
    block_number: int
    ledger_ucr: int
    chain_units: int
    chain_ucr: int
    drift_ucr: int
    dust_units: int

    @property
    def balanced(self) -> bool:
        """True when ledger and chain agree to the micro-credit."""
        return self.drift_ucr == 0


def dust_units(engine: Engine) -> int:
    """Token units kept as dust so far (below one micro-credit each)."""
    with engine.connect() as conn:
        return sum(int(u) for (u,) in conn.execute(select(DUST.c.units)))


def store(engine: Engine, result: ReconcileResult) -> None:
    """Keep a reconciliation so the report and status page can show the drift."""
    with engine.begin() as conn:
        conn.execute(
            RECON.insert().values(
                time=result.time, chain_id=result.chain_id, block_number=result.block_number,
                ledger_ucr=result.ledger_ucr, chain_units=str(result.chain_units), chain_ucr=result.chain_ucr,
                drift_ucr=result.drift_ucr, dust_units=str(result.dust_units),
            )
        )


def latest_reconciliation(engine: Engine) -> ReconcileResult | None:
    """The most recent stored reconciliation, or None (also when the wallet tables do not exist yet)."""
    from sqlalchemy import inspect

    if not inspect(engine).has_table(RECON.name):
        return None
    with engine.connect() as conn:
        row = conn.execute(select(RECON).order_by(RECON.c.time.desc(), RECON.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return ReconcileResult(
        row.time, int(row.chain_id), int(row.block_number), int(row.ledger_ucr), int(row.chain_units),
        int(row.chain_ucr), int(row.drift_ucr), int(row.dust_units),
    )
