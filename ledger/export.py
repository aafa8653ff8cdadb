"""The journal as an hledger journal or a beancount file, for outside tools to check and query.

    export(journal, "hledger", out)     # `hledger -f FILE bal` and `hledger check --strict` take it
    export(journal, "beancount", out)   # `bean-check FILE` takes it

Amounts are exact, never rounded: credits (CR, stored in micro-credits) as
decimals with 6 places ("1.250000 CR"), so both tools' balances equal
selfpub's to the micro-credit; every other commodity is stored in its
smallest unit and written as that whole integer (gas: "21000000000000 WEI",
never a fraction of a wei). hledger account names are ours as they are; beancount's are
ours with each part capitalised (assets:wallet -> Assets:Wallet), which is
one-to-one because our parts are lowercase. Each transaction carries its id
(hledger: the code, beancount: `ref` metadata), kind, idempotency key, task,
post, tx hash and model. The beancount file ends with a `balance` assertion
for every account with zero tolerance (`~ 0`), so bean-check itself proves
the totals to the micro-credit.

Transactions are streamed in (time, id) order: memory stays flat at any size.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TextIO

from sqlalchemy import text

from ledger.journal import Journal
from ledger.accounts import COMMODITY
from ledger.sql import Dialect

FORMATS = ("hledger", "beancount")
DECIMALS = 6
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Txn:
    """One transaction with its postings, as exported."""

    id: int
    time: datetime
    kind: str
    memo: str
    key: str
    task_id: str | None
    post_id: str | None
    tx_hash: str | None
    model: str | None
    postings: tuple[tuple[str, str, int], ...]  # (account, commodity, amount)


def decimal_text(amount: int, decimals: int = DECIMALS) -> str:
    """An integer of micro-units as an exact decimal string ("-1.250000"); decimals=0: the integer itself."""
    if decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def decimals_of(commodity: str) -> int:
    """Decimal places a commodity is written with: 6 for credits (micro-credits), 0 for the rest (wei)."""
    return DECIMALS if commodity == COMMODITY else 0


def amount_text(amount: int, commodity: str) -> str:
    """An amount in its commodity's smallest unit as the exact decimal the tools read ("-1.250000")."""
    return decimal_text(amount, decimals_of(commodity))


def transactions(journal: Journal, batch: int = 5_000) -> Iterator[Txn]:
    """Every transaction with its postings, in (time, id) order, streamed."""
    dialect = Dialect(journal.engine)
    stmt = text(
        "SELECT t.id, t.time, t.kind, t.memo, t.idempotency_key, t.task_id, t.post_id, t.tx_hash, t.model, "
        "p.account, p.commodity, p.amount FROM ledger_txn t JOIN ledger_posting p ON p.txn_id = t.id "
        "ORDER BY t.time, t.id, p.id"
    )
    with journal.engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(stmt)
        current: list = []
        for row in result:
            if current and current[0][0] != row[0]:
                yield _txn(dialect, current)
                current = []
            current.append(row)
        if current:
            yield _txn(dialect, current)


def _txn(dialect: Dialect, rows: list) -> Txn:
    first = rows[0]
    return Txn(
        id=int(first[0]), time=dialect.parse_ts(first[1]), kind=first[2], memo=first[3] or "", key=first[4],
        task_id=first[5], post_id=first[6], tx_hash=first[7], model=first[8],
        postings=tuple((r[9], r[10], int(r[11])) for r in rows),
    )


def _clean(value: str) -> str:
    return _UNSAFE_TEXT.sub(" ", value).strip()


def _tags(txn: Txn) -> list[tuple[str, str]]:
    tags = [("kind", txn.kind), ("key", txn.key)]
    for name, value in (("task", txn.task_id), ("post", txn.post_id), ("txhash", txn.tx_hash), ("model", txn.model)):
        if value:
            tags.append((name, value))
    return tags


# -- hledger ---------------------------------------------------------------------------


def write_hledger(journal: Journal, out: TextIO) -> int:
    """Write an hledger journal; returns how many transactions."""
    out.write("; selfpub ledger, exported for hledger. CR to the micro-credit (6 decimals), WEI in whole wei.\n\n")
    n = 0
    accounts: set[str] = set()
    commodities: set[str] = set()
    for txn in transactions(journal):
        # ';' starts a comment and ',' ends a tag value in hledger: keep both out.
        description = _clean(txn.memo).replace(";", ",") or txn.kind
        tags = ", ".join(f"{k}:{_clean(v).replace(',', ' ')}" for k, v in _tags(txn))
        out.write(f"{txn.time:%Y-%m-%d} * ({txn.id}) {description}  ; {tags}\n")
        out.write(f"    ; time: {txn.time.isoformat()}\n")
        for account, commodity, amount in txn.postings:
            out.write(f"    {account:<40}  {amount_text(amount, commodity):>22} {commodity}\n")
            accounts.add(account)
            commodities.add(commodity)
        out.write("\n")
        n += 1
    # Declared after the transactions (hledger reads declarations wherever they are), so one streaming
    # pass still suffices: `hledger check --strict` wants every account and commodity declared.
    out.write("; declarations, for `hledger check --strict`\n")
    for account in sorted(accounts):
        out.write(f"account {account}\n")
    for commodity in sorted(commodities):
        # hledger wants a decimal mark in the directive: "1." declares whole units (wei), no decimals.
        one = amount_text(10 ** decimals_of(commodity), commodity)
        out.write(f"commodity {one if '.' in one else one + '.'} {commodity}\n")
    return n


# -- beancount -------------------------------------------------------------------------


def beancount_account(name: str) -> str:
    """assets:wallet -> Assets:Wallet (each part's first letter capitalised)."""
    return ":".join(part[:1].upper() + part[1:] for part in name.split(":"))


def _bean_string(value: str) -> str:
    return '"' + _clean(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_beancount(journal: Journal, out: TextIO) -> int:
    """Write a beancount file ending in a balance assertion per account; returns how many transactions."""
    # Beancount orders directives by date itself, so the opens can follow the
    # transactions they precede: one streaming pass, memory flat.
    out.write("; selfpub ledger, exported for beancount. CR to the micro-credit (6 decimals), WEI in whole wei.\n")
    out.write('option "title" "selfpub ledger"\n\n')
    opened: dict[str, date] = {}
    commodities: dict[str, date] = {}
    totals: dict[tuple[str, str], int] = defaultdict(int)
    last_day: date | None = None
    n = 0
    for txn in transactions(journal):
        day = last_day = txn.time.date()
        lines = [f"{day.isoformat()} * {_bean_string(txn.memo or txn.kind)}", f'  ref: "{txn.id}"',
                 f'  time: "{txn.time.isoformat()}"']
        lines += [f"  {k}: {_bean_string(v)}" for k, v in _tags(txn)]
        for account, commodity, amount in txn.postings:
            opened.setdefault(account, day)
            commodities.setdefault(commodity, day)
            totals[(account, commodity)] += amount
            lines.append(f"  {beancount_account(account):<44} {amount_text(amount, commodity):>22} {commodity}")
        out.write("\n".join(lines) + "\n\n")
        n += 1
    for commodity, day in sorted(commodities.items()):
        out.write(f"{day.isoformat()} commodity {commodity}\n")
    for account, day in sorted(opened.items()):
        out.write(f"{day.isoformat()} open {beancount_account(account)}\n")
    if last_day is not None:
        out.write("\n")
        check = (last_day + timedelta(days=1)).isoformat()
        # A beancount balance assertion includes every sub-account.
        subtree: dict[tuple[str, str], int] = defaultdict(int)
        for (account, commodity), amount in totals.items():
            parts = account.split(":")
            for i in range(1, len(parts) + 1):
                parent = ":".join(parts[:i])
                if parent in opened:
                    subtree[(parent, commodity)] += amount
        for (account, commodity), amount in sorted(subtree.items()):
            out.write(f"{check} balance {beancount_account(account):<44} {amount_text(amount, commodity):>22} ~ 0 "
                      f"{commodity}\n")
    return n


def export(journal: Journal, fmt: str, out: TextIO) -> int:
    """Write the journal in `fmt` (hledger|beancount) to `out`; returns how many transactions."""
    if fmt == "hledger":
        return write_hledger(journal, out)
    if fmt == "beancount":
        return write_beancount(journal, out)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
