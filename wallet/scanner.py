"""Scan the credit token's Transfer logs to the agent: a log is booked while its block is canonical.

Only blocks with `confirmations` blocks on top of them are scanned (safe = head - confirmations),
from the stored cursor (the last scanned block and its hash):

  tip      assets:wallet / income:tips      (from any address)
  funding  assets:wallet / equity:opening   (a mint: from the zero address)
  read     assets:wallet / income:reads:<kind>  (an x402 payment for a read: wallet/reads.py matches it by
                                             transaction hash, or by its EIP-3009 nonce; with its post and task)

A log is one wallet_counted_log row per (tx hash, log index, block hash). Its booking follows the
block's presence in the canonical chain, as often as the chain changes its mind (A -> B -> A):

  unseen --scan finds it--> counted --its block is replaced--> reversed --scan finds it again--> counted ...
          tip:<key>                  reorg:<key>                          tip:<key>:<n> (the same row)

idempotency key: tip:<chain id>:<tx hash>:<log index>[:<n>] (read:... for a read)  (n: the n-th booking of that log after
reorgs, in the same block or another; its reversal is reorg:<that key>). The ledger is append-only:
a booking, its reversal and a re-booking are three transactions; the row holds the latest key.

One scan, top to bottom:

  head = block_number
  head < cursor                     node behind: scan nothing, reverse nothing, say so in `note`
  reorg check: the cursor's block and every counted block within reorg_window below it
      the node has no such block    node behind (a lagging backend): stop, as above
      another hash at that height   reorg: reverse the counted logs of changed blocks, rewind the
                                    cursor below them (the whole window when the cursor's block changed)
  ranges [start, end] up to safe
      hash(end), get_logs, hash(end) again; a different hash: the node moved mid-read, stop for now
      book the range's logs and move the cursor, in one transaction

Every write re-reads the cursor under the scan lock (pg_advisory_xact_lock on PostgreSQL, BEGIN
IMMEDIATE on SQLite) and stops when another scan moved it meanwhile: two scans book nothing twice.
A reorg whose fork point lies deeper than reorg_window below the cursor is not seen.

eth_getLogs refusals ("query returned more than N results", "block range too large") halve the range
(down to one block) and the smaller size stays in LogRange for the next calls. Errors:

    RpcUnavailable (wallet.errors)          retryable: the daemon goes on and scans at the next run
     +-- RpcErrorReply     the node answered a JSON-RPC error (code, message), classified by wallet.chain.rpc
          +-- LogRangeRefused   (here) eth_getLogs refused even a one-block range
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, text, update
from web3 import Web3
from web3.exceptions import BlockNotFound

from kernel.clock import utcnow
from kernel.db import is_postgres
from ledger.accounts import OPENING, TIPS, WALLET, reads_account
from ledger.journal import Entry, Journal
from ledger.models import Transaction
from wallet.chain import TRANSFER_TOPIC, ZERO_ADDRESS, address_topic, hexstr, rpc, topic_address
from wallet.errors import RpcErrorReply
from wallet.models import CountedLog, Dust, ScanCursor
from wallet.reads import counted_kind, match_read, read_kind
from wallet.units import units_to_ucr

log = logging.getLogger(__name__)

CURSOR = ScanCursor.__table__
COUNTED = CountedLog.__table__
DUST = Dust.__table__
LEDGER_TXN = Transaction.__table__
DEFAULT_REORG_WINDOW = 64

# How nodes say "ask for fewer logs" (lowercase fragments of the JSON-RPC error message; the codes vary:
# -32005 Infura/geth "query returned more than 10000 results", -32602 Alchemy "Log response size
# exceeded", -32000/-32062/-32614 others "block range too large" / "is limited to a 10,000 range").
LOG_RANGE_MESSAGES = (
    "query returned more than", "more than 10000 results", "too many results", "too many logs",
    "response size exceeded", "response size is larger", "range too large", "range is too large",
    "range too wide", "range is too wide", "exceed maximum block range", "exceeds maximum block range",
    "exceeds the range", "block range greater than", "block range limit", "max block range",
    "is limited to a", "limit exceeded for eth_getlogs",
)
# How nodes say "I do not have that block yet" for eth_getLogs (execution-apis: -32602 "block range
# extends beyond current head block"): a lagging backend, not a range to shrink.
BEHIND_MESSAGES = ("beyond current head", "after last accepted block", "header not found", "unknown block")


class LogRangeRefused(RpcErrorReply):
    """eth_getLogs refused a one-block range as too large: nothing smaller to ask; retry later."""


def is_range_refusal(message: str) -> bool:
    """True for an eth_getLogs error that asks for a smaller block range or fewer results."""
    lower = message.lower()
    return any(fragment in lower for fragment in LOG_RANGE_MESSAGES)


def is_behind_refusal(message: str) -> bool:
    """True for an error saying the node does not have the asked blocks yet."""
    lower = message.lower()
    return any(fragment in lower for fragment in BEHIND_MESSAGES)


@dataclass
class LogRange:
    """The eth_getLogs range (blocks) that works on this node; shared by the scans of one wallet."""

    limit: int

    def shrink(self, refused: int) -> int:
        """The range after `refused` blocks were refused: half of it, at least 1."""
        self.limit = max(1, min(self.limit, refused // 2))
        return self.limit


@dataclass(frozen=True)
class ScanResult:
    """What one scan did."""

    from_block: int
    to_block: int  # the cursor after the scan (last block scanned)
    head: int
    logs: int = 0  # transfer logs seen
    counted: int = 0  # newly booked (a re-included log counts again)
    counted_ucr: int = 0
    reversed: int = 0  # booked logs undone by a reorg
    note: str = ""  # why the scan stopped early (the node is behind or moved); empty when it reached safe
    behind: bool = False  # the node is behind our cursor: it answered, but its chain data is not fresh


class _Stop(Exception):
    """Ends a scan early with what it booked so far: the node is behind or moved, or another scan did."""

    def __init__(self, note: str, *, behind: bool = False):
        super().__init__(note)
        self.behind = behind


@dataclass
class _Tally:
    logs: int = 0
    counted: int = 0
    ucr: int = 0
    reversed: int = 0


def _counter(kind: str) -> str:
    """The account a counted log's kind books against (what the wallet's increase is)."""
    if kind == "funding":
        return OPENING
    read = read_kind(kind)
    return reads_account(read) if read is not None else TIPS


def _booking_number(key: str) -> int:
    """n of tip:<chain>:<tx>:<log>[:<n>] (0 for the first booking)."""
    parts = key.split(":")
    return int(parts[4]) if len(parts) > 4 else 0


class TipScanner:
    """Books incoming token transfers to one address while they are in the canonical chain."""

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
        log_range: LogRange | None = None,
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
        self.log_range = log_range if log_range is not None else LogRange(block_range)
        self.clock = clock
        digest = hashlib.blake2b(f"selfpub:scan:{chain_id}:{self.token}:{self.address}".encode(), digest_size=8)
        self._lock_key = int.from_bytes(digest.digest(), "big", signed=True)

    # -- cursor --------------------------------------------------------------

    def _where(self):  # noqa: ANN202
        return (CURSOR.c.chain_id == self.chain_id) & (CURSOR.c.token == self.token) & (CURSOR.c.address == self.address)

    def cursor(self) -> tuple[int, str] | None:
        """(last scanned block, its hash), or None before the first scan."""
        with self.engine.connect() as conn:
            return self._cursor_in(conn)

    def _cursor_in(self, conn: Connection) -> tuple[int, str] | None:
        row = conn.execute(select(CURSOR.c.block_number, CURSOR.c.block_hash).where(self._where())).first()
        return (int(row.block_number), row.block_hash) if row else None

    def _set_cursor(self, conn: Connection, cursor: tuple[int, str] | None) -> None:
        if cursor is None:
            conn.execute(CURSOR.delete().where(self._where()))
            return
        if is_postgres(conn.engine):
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        values = {"block_number": cursor[0], "block_hash": cursor[1], "updated_at": self.clock()}
        conn.execute(
            insert(CURSOR)
            .values(chain_id=self.chain_id, token=self.token, address=self.address, **values)
            .on_conflict_do_update(index_elements=["chain_id", "token", "address"], set_=values)
        )

    @contextmanager
    def _locked(self, expected: tuple[int, str] | None) -> Iterator[Connection]:
        """A write transaction holding the scan lock, in which the cursor is still `expected`."""
        with self.journal.writer.begin() as conn:  # BEGIN IMMEDIATE on SQLite: the write lock up front
            if is_postgres(conn.engine):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._lock_key})
            if self._cursor_in(conn) != expected:
                raise _Stop("another scan moved the cursor meanwhile; the next scan goes on from there")
            yield conn

    # -- chain reads ---------------------------------------------------------

    def _call(self, operation: str, fn: Callable[[], Any], **attributes: Any) -> Any:  # noqa: ANN401
        """One node call: transport failures and JSON-RPC error replies become RpcUnavailable (wallet.chain)."""
        with rpc(operation, **attributes):
            return fn()

    def _head(self) -> int:
        return int(self._call("block_number", lambda: self.w3.eth.block_number))

    def _block_hash(self, number: int) -> str:
        """The node's hash of block `number`; a node without it is behind (stops the scan)."""
        try:
            block = self._call("get_block", lambda: self.w3.eth.get_block(number), block=number)
        except BlockNotFound:
            block = None
        except RpcErrorReply as exc:
            if not is_behind_refusal(exc.node_message):
                raise
            block = None
        if block is None:
            raise _Stop(f"node behind: it has no block {number} yet; waiting for it to catch up", behind=True)
        return hexstr(block["hash"])

    def _logs(self, start: int, end: int) -> list:
        """Transfer logs to the address in [start, end]; None when the node refuses the range as too large."""
        query = {
            "fromBlock": start, "toBlock": end, "address": self.token,
            "topics": [TRANSFER_TOPIC, None, address_topic(self.address)],
        }
        try:
            return self._call("get_logs", lambda: self.w3.eth.get_logs(query), from_block=start, to_block=end)
        except RpcErrorReply as exc:
            if is_behind_refusal(exc.node_message):
                raise _Stop(f"node behind: it refused logs up to block {end} ({exc.node_message[:120]}); waiting",
                            behind=True) from None
            if not is_range_refusal(exc.node_message):
                raise
            if start == end:
                raise LogRangeRefused("get_logs", exc.code, exc.node_message) from None
            return None

    def _read_range(self, start: int, end: int) -> tuple[int, str, list]:
        """(end, its hash, logs) of the largest range from `start` the node answers, read consistently."""
        while True:
            before = self._block_hash(end)
            logs = self._logs(start, end)
            if logs is None:
                size = self.log_range.shrink(end - start + 1)
                log.warning("eth_getLogs range too large: shrinking",
                            extra={"from_block": start, "to_block": end, "range": size, "chain_id": self.chain_id})
                end = start + size - 1
                continue
            if self._block_hash(end) != before:
                raise _Stop(f"the node's block {end} changed while its logs were read (a reorg); the next scan reads it again")
            return end, before, logs

    # -- scanning ------------------------------------------------------------

    def scan(self, max_blocks: int | None = None) -> ScanResult:
        """Follow reorgs, then book every confirmed transfer since the cursor (see the module docstring)."""
        head = self._head()
        cur = self.cursor()
        first = cur[0] + 1 if cur else self.start_block
        tally = _Tally()
        note, behind = "", False
        try:
            if cur is not None and head < cur[0]:
                raise _Stop(f"node behind: its head {head} is below the last scanned block {cur[0]}; "
                            "waiting for it to catch up", behind=True)
            cur = self._check_reorgs(head, cur, tally)
            first = cur[0] + 1 if cur else self.start_block
            safe = head - self.confirmations
            last = safe if max_blocks is None else min(safe, first + max_blocks - 1)
            start = first
            while start <= last:
                end, end_hash, logs = self._read_range(start, min(start + self.log_range.limit - 1, last))
                with self._locked(cur) as conn:
                    for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
                        self._count(conn, entry, tally)
                    cur = (end, end_hash)
                    self._set_cursor(conn, cur)
                tally.logs += len(logs)
                log.info("wallet scan range",
                         extra={"from_block": start, "to_block": end, "logs": len(logs), "chain_id": self.chain_id})
                start = end + 1
        except _Stop as stop:
            note, behind = str(stop), stop.behind
            log.warning("wallet scan stopped early", extra={"reason": note, "head": head, "chain_id": self.chain_id})
            cur = self.cursor()
        last_scanned = cur[0] if cur else self.start_block - 1
        return ScanResult(min(first, last_scanned + 1), last_scanned, head, tally.logs, tally.counted, tally.ucr,
                          tally.reversed, note, behind)

    def _count(self, conn: Connection, entry: Any, tally: _Tally) -> None:  # noqa: ANN401
        """Book one log unless it is booked in this very block; a reversed row of this block is booked again."""
        tx_hash = hexstr(entry["transactionHash"])
        log_index = int(entry["logIndex"])
        block_hash = hexstr(entry["blockHash"])
        rows = conn.execute(
            select(COUNTED).where(COUNTED.c.chain_id == self.chain_id, COUNTED.c.tx_hash == tx_hash)
        ).all()
        same = next((r for r in rows if r.log_index == log_index and r.block_hash == block_hash), None)
        if same is not None and same.status == "counted":
            return
        # The transaction is in this block now: a booking of it in any other block is off the chain.
        for r in rows:
            if r.status == "counted" and r.block_hash != block_hash:
                tally.reversed += self._reverse(conn, r.id)
        earlier = [_booking_number(r.idempotency_key) for r in rows if r.log_index == log_index]
        sender = topic_address(entry["topics"][1])
        read = None if sender == ZERO_ADDRESS else match_read(
            conn, chain_id=self.chain_id, token=self.token, tx_hash=tx_hash, sender=sender,
            receipt_logs=lambda: self._call("get_transaction_receipt",
                                            lambda: self.w3.eth.get_transaction_receipt(tx_hash))["logs"],
        )
        kind = "funding" if sender == ZERO_ADDRESS else counted_kind(read.kind) if read else "tip"
        prefix = "read" if read else "tip"
        key = f"{prefix}:{self.chain_id}:{tx_hash}:{log_index}" + (f":{max(earlier) + 1}" if earlier else "")
        units = int.from_bytes(bytes(entry["data"])[-32:], "big") if entry["data"] else 0
        amount = units_to_ucr(units, self.decimals)
        txn_id = None
        if amount.ucr:
            memo = f"read of {read.kind} {read.slug} paid by {sender}" if read else f"{kind} from {sender}"
            txn_id = self.journal.post_in(
                conn, prefix if read else kind, [Entry(WALLET, amount.ucr), Entry(_counter(kind), -amount.ucr)],
                idempotency_key=key, memo=memo, tx_hash=tx_hash,
                task_id=read.task_id if read else None, post_id=read.post_id if read else None,
            ).txn_id
        if amount.dust_units:
            conn.execute(DUST.insert().values(source=key, units=str(amount.dust_units), decimals=self.decimals, created_at=self.clock()))
        values = {
            "block_number": int(entry["blockNumber"]), "sender": sender, "units": str(units), "ucr": amount.ucr,
            "kind": kind, "idempotency_key": key, "txn_id": txn_id, "status": "counted", "reversal_txn_id": None,
            "counted_at": self.clock(),
        }
        if same is not None:  # its block is back (A -> B -> A): the same row, booked again under a new key
            conn.execute(update(COUNTED).where(COUNTED.c.id == same.id).values(**values))
        else:
            conn.execute(COUNTED.insert().values(chain_id=self.chain_id, tx_hash=tx_hash, log_index=log_index,
                                                 block_hash=block_hash, **values))
        tally.counted += 1
        tally.ucr += amount.ucr

    # -- reorgs --------------------------------------------------------------

    def _check_reorgs(self, head: int, cur: tuple[int, str] | None, tally: _Tally) -> tuple[int, str] | None:
        """Reverse counted logs whose block the node replaced, rewind the cursor; returns the cursor."""
        if cur is None:
            return None
        cursor_block, cursor_hash = cur
        low = max(cursor_block - self.reorg_window, self.start_block)
        with self.engine.connect() as conn:
            live = conn.execute(
                select(COUNTED.c.id, COUNTED.c.block_number, COUNTED.c.block_hash).where(
                    COUNTED.c.chain_id == self.chain_id, COUNTED.c.status == "counted", COUNTED.c.block_number >= low
                )
            ).all()
        # A counted block above the node's head cannot be judged yet (the node is behind): it waits.
        live = [r for r in live if int(r.block_number) <= head]
        hashes = {n: self._block_hash(n) for n in sorted({int(r.block_number) for r in live} | {cursor_block})}
        gone = [r for r in live if hashes[int(r.block_number)] != r.block_hash]
        rewind = min([int(r.block_number) - 1 for r in gone] + [cursor_block])
        if hashes[cursor_block] != cursor_hash:
            rewind = min(rewind, low - 1)  # the fork point is somewhere below: read the window again
        if not gone and rewind == cursor_block:
            return cur
        if rewind == cursor_block:
            target: tuple[int, str] | None = cur
        else:
            target = (rewind, self._block_hash(rewind)) if rewind >= self.start_block else None
        with self._locked(cur) as conn:
            reversed_now = sum(self._reverse(conn, r.id) for r in gone)
            self._set_cursor(conn, target)
        tally.reversed += reversed_now
        log.warning("wallet reorg detected", extra={"chain_id": self.chain_id, "reversed": reversed_now, "rewind_to": rewind})
        return target

    def _reverse(self, conn: Connection, counted_id: int) -> int:
        """Undo one counted log with a correcting transaction; 1 if it was counted, else 0."""
        row = conn.execute(select(COUNTED).where(COUNTED.c.id == counted_id)).first()
        if row is None or row.status != "counted":
            return 0
        reversal = None
        if row.txn_id is not None:
            # The mirror of what _count posted, inside our transaction (Journal.reverse opens its own).
            booked = conn.execute(select(LEDGER_TXN.c.task_id, LEDGER_TXN.c.post_id)
                                  .where(LEDGER_TXN.c.id == row.txn_id)).first()  # a read's post and task
            reversal = self.journal.post_in(
                conn, "reversal", [Entry(WALLET, -int(row.ucr)), Entry(_counter(row.kind), int(row.ucr))],
                idempotency_key=f"reorg:{row.idempotency_key}", memo=f"reorg removed {row.kind} {row.tx_hash}",
                tx_hash=row.tx_hash, reverses_id=row.txn_id,
                task_id=booked.task_id if booked else None, post_id=booked.post_id if booked else None,
            ).txn_id
            log.warning("wallet reversed a reorged transfer", extra={"tx_hash": row.tx_hash, "txn_id": row.txn_id})
        conn.execute(update(COUNTED).where(COUNTED.c.id == counted_id).values(status="reversed", reversal_txn_id=reversal))
        conn.execute(DUST.delete().where(DUST.c.source == row.idempotency_key))
        return 1
