"""Scan the credit token's Transfer logs to the agent and book each one once.

Only blocks with `confirmations` blocks on top of them are scanned
(safe = head - confirmations), in ranges of at most `block_range` blocks,
from the stored cursor. Each log is booked in the same database transaction
as the cursor move, so a crash never counts a log twice or skips one:

  tip      assets:wallet / income:tips      (from any address)
  funding  assets:wallet / equity:opening   (a mint: from the zero address)

idempotency key: tip:<chain id>:<tx hash>:<log index>[:<n>]  (n-th re-inclusion after a reorg)

Reorgs: before scanning, the blocks of the counted logs within `reorg_window`
blocks of the cursor, and the cursor's own block, are compared with the
node's. A counted log whose block hash changed (or whose block is gone) is
reversed with a correcting transaction and the cursor rewinds, so whatever
the new chain holds is counted afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from web3 import Web3

from config.db import is_postgres
from ledger.journal import OPENING, TIPS, WALLET, Entry, Journal
from wallet.chain import TRANSFER_TOPIC, ZERO_ADDRESS, address_topic, hexstr, rpc, topic_address
from wallet.models import CountedLog, Dust, ScanCursor, utcnow
from wallet.units import units_to_ucr

log = logging.getLogger(__name__)

CURSOR = ScanCursor.__table__
COUNTED = CountedLog.__table__
DUST = Dust.__table__
DEFAULT_REORG_WINDOW = 64


@dataclass(frozen=True)
class ScanResult:
    """What one scan did."""

    from_block: int
    to_block: int  # the cursor after the scan (last block scanned)
    head: int
    logs: int = 0  # transfer logs seen
    counted: int = 0  # newly booked
    counted_ucr: int = 0
    reversed: int = 0  # booked logs undone by a reorg
    note: str = ""


class TipScanner:
    """Books incoming token transfers to one address, once each, reorg-aware."""

    def __init__(
        self,
        w3: Web3,
        journal: Journal,
        *,
        chain_id: int,
        token: str,
        address: str,
        decimals: int,
        confirmations: int,
        block_range: int,
        start_block: int = 0,
        reorg_window: int = DEFAULT_REORG_WINDOW,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.w3 = w3
        self.journal = journal
        self.engine = journal.engine
        self.chain_id = chain_id
        self.token = Web3.to_checksum_address(token)
        self.address = Web3.to_checksum_address(address)
        self.decimals = decimals
        self.confirmations = confirmations
        self.block_range = block_range
        self.start_block = start_block
        self.reorg_window = reorg_window
        self.clock = clock

    # -- cursor --------------------------------------------------------------

    def _where(self):  # noqa: ANN202
        return (CURSOR.c.chain_id == self.chain_id) & (CURSOR.c.token == self.token) & (CURSOR.c.address == self.address)

    def cursor(self) -> tuple[int, str] | None:
        """(last scanned block, its hash), or None before the first scan."""
        with self.engine.connect() as conn:
            row = conn.execute(select(CURSOR.c.block_number, CURSOR.c.block_hash).where(self._where())).first()
        return (int(row.block_number), row.block_hash) if row else None

    def _set_cursor(self, conn: Connection, number: int, block_hash: str) -> None:
        if is_postgres(conn.engine):
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        values = {"block_number": number, "block_hash": block_hash, "updated_at": self.clock()}
        conn.execute(
            insert(CURSOR)
            .values(chain_id=self.chain_id, token=self.token, address=self.address, **values)
            .on_conflict_do_update(index_elements=["chain_id", "token", "address"], set_=values)
        )

    # -- chain reads ---------------------------------------------------------

    def _block_hash(self, number: int) -> str | None:
        with rpc("get_block", block=number):
            try:
                block = self.w3.eth.get_block(number)
            except Exception as exc:  # noqa: BLE001
                from web3.exceptions import BlockNotFound

                if isinstance(exc, BlockNotFound):
                    return None
                raise
        return hexstr(block["hash"])

    def _logs(self, start: int, end: int) -> list:
        with rpc("get_logs", from_block=start, to_block=end):
            return self.w3.eth.get_logs(
                {
                    "fromBlock": start,
                    "toBlock": end,
                    "address": self.token,
                    "topics": [TRANSFER_TOPIC, None, address_topic(self.address)],
                }
            )

    # -- scanning ------------------------------------------------------------

    def scan(self, max_blocks: int | None = None) -> ScanResult:
        """Check for reorgs, then book every confirmed transfer since the cursor."""
        with rpc("block_number"):
            head = int(self.w3.eth.block_number)
        safe = head - self.confirmations
        reversed_count = self._check_reorgs(head)
        cur = self.cursor()
        first = cur[0] + 1 if cur else self.start_block
        last = safe if max_blocks is None else min(safe, first + max_blocks - 1)
        result = ScanResult(first, first - 1, head, reversed=reversed_count)
        start = first
        while start <= last:
            end = min(start + self.block_range - 1, last)
            logs = self._logs(start, end)
            end_hash = self._block_hash(end)
            counted = ucr = 0
            with self.engine.begin() as conn:
                for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
                    booked = self._count(conn, entry)
                    if booked is not None:
                        counted += 1
                        ucr += booked
                self._set_cursor(conn, end, end_hash or "")
            result = ScanResult(
                first, end, head, result.logs + len(logs), result.counted + counted,
                result.counted_ucr + ucr, reversed_count,
            )
            log.info(
                "wallet scan range",
                extra={"from_block": start, "to_block": end, "logs": len(logs), "counted": counted, "chain_id": self.chain_id},
            )
            start = end + 1
        return result

    def _count(self, conn: Connection, entry) -> int | None:  # noqa: ANN001
        """Book one log unless this exact (tx, log index, block hash) is booked; returns ucr booked."""
        tx_hash = hexstr(entry["transactionHash"])
        log_index = int(entry["logIndex"])
        block_hash = hexstr(entry["blockHash"])
        rows = conn.execute(
            select(COUNTED.c.id, COUNTED.c.block_hash, COUNTED.c.status).where(
                COUNTED.c.chain_id == self.chain_id, COUNTED.c.tx_hash == tx_hash, COUNTED.c.log_index == log_index
            )
        ).all()
        if any(r.block_hash == block_hash for r in rows):
            return None
        for r in rows:
            if r.status == "counted":  # seen in another block the reorg check did not reach
                self._reverse(conn, r.id)
        key = f"tip:{self.chain_id}:{tx_hash}:{log_index}" + (f":{len(rows)}" if rows else "")
        sender = topic_address(entry["topics"][1])
        units = int.from_bytes(bytes(entry["data"])[-32:], "big") if entry["data"] else 0
        amount = units_to_ucr(units, self.decimals)
        kind = "funding" if sender == ZERO_ADDRESS else "tip"
        txn_id = None
        if amount.ucr:
            counter = OPENING if kind == "funding" else TIPS
            txn_id = self.journal.post_in(
                conn, kind, [Entry(WALLET, amount.ucr), Entry(counter, -amount.ucr)],
                idempotency_key=key, memo=f"{kind} from {sender}", tx_hash=tx_hash,
            ).txn_id
        if amount.dust_units:
            conn.execute(DUST.insert().values(source=key, units=str(amount.dust_units), decimals=self.decimals, created_at=self.clock()))
        conn.execute(
            COUNTED.insert().values(
                chain_id=self.chain_id, tx_hash=tx_hash, log_index=log_index, block_number=int(entry["blockNumber"]),
                block_hash=block_hash, sender=sender, units=str(units), ucr=amount.ucr, kind=kind,
                idempotency_key=key, txn_id=txn_id, status="counted", counted_at=self.clock(),
            )
        )
        return amount.ucr

    # -- reorgs --------------------------------------------------------------

    def _check_reorgs(self, head: int) -> int:
        """Reverse counted logs whose block changed; rewind the cursor. Returns how many were reversed."""
        cur = self.cursor()
        if cur is None:
            return 0
        cursor_block, cursor_hash = cur
        low = max(cursor_block - self.reorg_window, 0)
        with self.engine.connect() as conn:
            live = conn.execute(
                select(COUNTED.c.id, COUNTED.c.block_number, COUNTED.c.block_hash).where(
                    COUNTED.c.chain_id == self.chain_id, COUNTED.c.status == "counted", COUNTED.c.block_number >= low
                )
            ).all()
        hashes: dict[int, str | None] = {}
        for number in sorted({int(r.block_number) for r in live} | {cursor_block}):
            hashes[number] = self._block_hash(number) if number <= head else None
        gone = [r for r in live if hashes[int(r.block_number)] != r.block_hash]
        rewind_to = None
        if hashes[cursor_block] != cursor_hash:
            rewind_to = max(low, self.start_block) - 1
        if gone:
            rewind_to = min([int(r.block_number) - 1 for r in gone] + ([rewind_to] if rewind_to is not None else []))
        if rewind_to is None:
            return 0
        with self.engine.begin() as conn:
            for r in gone:
                self._reverse(conn, r.id)
            if rewind_to < self.start_block:
                conn.execute(CURSOR.delete().where(self._where()))
            else:
                self._set_cursor(conn, rewind_to, self._block_hash(rewind_to) or "")
        log.warning(
            "wallet reorg detected", extra={"chain_id": self.chain_id, "reversed": len(gone), "rewind_to": rewind_to}
        )
        return len(gone)

    def _reverse(self, conn: Connection, counted_id: int) -> None:
        row = conn.execute(select(COUNTED).where(COUNTED.c.id == counted_id)).first()
        reversal = None
        if row.txn_id is not None:
            # The mirror of what _count posted, inside our transaction (Journal.reverse opens its own).
            counter = OPENING if row.kind == "funding" else TIPS
            reversal = self.journal.post_in(
                conn, "reversal", [Entry(WALLET, -int(row.ucr)), Entry(counter, int(row.ucr))],
                idempotency_key=f"reorg:{row.idempotency_key}", memo=f"reorg removed {row.kind} {row.tx_hash}",
                tx_hash=row.tx_hash, reverses_id=row.txn_id,
            ).txn_id
        conn.execute(update(COUNTED).where(COUNTED.c.id == counted_id).values(status="reversed", reversal_txn_id=reversal))
        conn.execute(DUST.delete().where(DUST.c.source == row.idempotency_key))
        if row.txn_id is None:
            return
        log.warning("wallet reversed a reorged transfer", extra={"tx_hash": row.tx_hash, "txn_id": row.txn_id})
