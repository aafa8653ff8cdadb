"""Tips: each Transfer log to the agent booked once, only when confirmed, in bounded ranges."""

from __future__ import annotations

from ledger.journal import OPENING, TIPS, WALLET, Journal
from tests.wallet.conftest import embedded_wallet
from wallet.embedded import EmbeddedChain
from wallet.reconcile import dust_units


def test_tips_are_counted_once_across_rescans_and_restarts(chain: EmbeddedChain, journal: Journal) -> None:
    chain.fund_agent(10_000_000)
    chain.tip(1_500_000)
    chain.tip(250_000)
    first = embedded_wallet(chain, journal).scan()
    assert (first.logs, first.counted, first.counted_ucr) == (3, 3, 11_750_000)
    # the same wallet again, then a "restarted" one with a cursor rewound to zero
    assert embedded_wallet(chain, journal).scan().counted == 0
    restarted = embedded_wallet(chain, journal)
    with journal.engine.begin() as conn:
        from wallet.models import ScanCursor

        conn.execute(ScanCursor.__table__.delete())
    again = restarted.scan()
    assert (again.logs, again.counted) == (3, 0)
    assert journal.balance(WALLET) == 11_750_000
    assert journal.balance(TIPS) == -1_750_000
    assert journal.balance(OPENING) == -10_000_000


def test_a_mint_is_opening_equity_and_a_transfer_is_a_tip(chain: EmbeddedChain, sqlite_journal: Journal) -> None:
    chain.fund_agent(3_000_000)
    chain.tip(1_000_000)
    embedded_wallet(chain, sqlite_journal).scan()
    assert sqlite_journal.balance(OPENING) == -3_000_000
    assert sqlite_journal.balance(TIPS) == -1_000_000


def test_only_blocks_with_enough_confirmations_are_counted(chain: EmbeddedChain, sqlite_journal: Journal) -> None:
    wallet = embedded_wallet(chain, sqlite_journal, confirmations=3)
    chain.tip(2_000_000)
    assert wallet.scan().counted == 0
    chain.mine(2)
    assert wallet.scan().counted == 0
    chain.mine(1)
    r = wallet.scan()
    assert (r.counted, r.counted_ucr) == (1, 2_000_000)


def test_scans_run_in_bounded_block_ranges(chain: EmbeddedChain, sqlite_journal: Journal, caplog) -> None:  # noqa: ANN001
    for _ in range(4):
        chain.tip(100_000)
        chain.mine(3)
    wallet = embedded_wallet(chain, sqlite_journal, scan_block_range=5)
    with caplog.at_level("INFO", logger="wallet.scanner"):
        r = wallet.scan()
    ranges = [(rec.from_block, rec.to_block) for rec in caplog.records if rec.message == "wallet scan range"]
    assert all(b - a + 1 <= 5 for a, b in ranges)
    assert ranges[0][0] == 0 and ranges[-1][1] == r.head
    assert (r.counted, r.counted_ucr) == (4, 400_000)


def test_max_blocks_leaves_the_rest_for_the_next_scan(chain: EmbeddedChain, sqlite_journal: Journal) -> None:
    chain.mine(10)
    chain.tip(100_000)
    wallet = embedded_wallet(chain, sqlite_journal)
    part = wallet.scan(max_blocks=4)
    assert part.to_block == 3 and part.counted == 0
    assert wallet.scan().counted == 1


def test_sub_micro_credit_remainders_are_kept_as_dust(chain: EmbeddedChain, sqlite_journal: Journal) -> None:
    odd = 1_000_000 * 10**12 + 999  # 1 credit and 999 token units (18 decimals)
    tx = chain.token.functions.transfer(chain.agent, odd).transact({"from": chain.funder})
    chain.w3.eth.wait_for_transaction_receipt(tx)
    wallet = embedded_wallet(chain, sqlite_journal)
    assert wallet.scan().counted_ucr == 1_000_000
    assert dust_units(sqlite_journal.engine) == 999
    rec = wallet.reconcile()
    assert (rec.drift_ucr, rec.dust_units, rec.chain_units) == (0, 999, odd)
