"""Tips over a chain model: a reorged block that comes back is booked again, a lagging node reverses
nothing, a node that refuses wide log ranges is asked for narrower ones (issue 11, scenarios 4, 5, 16)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger.journal import OPENING, TIPS, WALLET, Journal
from tests.wallet.chainmodel import AGENT, FUNDER, TOKEN, Chain, FakeNode, FakeW3, funding, rpc_error
from wallet.errors import RpcUnavailable
from wallet.models import CountedLog, ScanCursor
from wallet.scanner import TipScanner

CHAIN_ID = 31337
COUNTED = CountedLog.__table__


def scanner(node: FakeNode, journal: Journal, *, confirmations: int = 1, block_range: int = 100, **extra) -> TipScanner:  # noqa: ANN003
    return TipScanner(
        FakeW3(node), journal, chain_id=CHAIN_ID, token=TOKEN, address=AGENT, decimals=6,
        confirmations=confirmations, block_range=block_range, **extra,
    )


def live_rows(journal: Journal) -> list:
    with journal.engine.connect() as conn:
        return conn.execute(select(COUNTED).where(COUNTED.c.status == "counted").order_by(COUNTED.c.id)).all()


def cursor(journal: Journal) -> tuple[int, str] | None:
    with journal.engine.connect() as conn:
        row = conn.execute(select(ScanCursor.__table__.c.block_number, ScanCursor.__table__.c.block_hash)).first()
    return (row.block_number, row.block_hash) if row else None


# -- scenario 4: a log follows its block in and out of the canonical chain ---------------------------


def test_scenario_4_a_tip_whose_block_comes_back_is_booked_again(journal: Journal) -> None:
    chain = Chain()
    chain.mine((chain.transfer(FUNDER, AGENT, 2_000_000),))
    chain.mine()
    fork_a = len(chain.history) - 1
    tips = scanner(FakeNode(chain), journal)
    assert tips.scan().counted == 1

    chain.reorg(2, [(), ()])  # fork B: the tip's block and the one on top, replaced by empty blocks
    fork_b = len(chain.history) - 1
    assert tips.scan().reversed == 1
    assert journal.balance(WALLET) == 0

    chain.restore(fork_a)  # A wins again, with the very same block hashes
    r = tips.scan()
    assert (r.counted, r.counted_ucr) == (1, 2_000_000)
    assert journal.balance(WALLET) == 2_000_000 and journal.balance(TIPS) == -2_000_000

    for fork in (fork_b, fork_a, fork_b, fork_a):  # and again: each flip books or unbooks it exactly once
        chain.restore(fork)
        tips.scan()
    assert journal.balance(WALLET) == 2_000_000
    (row,) = live_rows(journal)
    assert row.idempotency_key.endswith(":0:3")  # its fourth booking: tip:<chain>:<tx>:<log 0>:3
    assert journal.verify() == []


def test_scenario_4_a_tip_moved_to_another_block_and_back_counts_once(journal: Journal) -> None:
    chain = Chain()
    tip = chain.transfer(FUNDER, AGENT, 700_000)
    chain.mine((tip,))
    chain.mine()
    chain.mine()
    fork_a = len(chain.history) - 1
    tips = scanner(FakeNode(chain), journal)
    assert tips.scan().counted == 1

    chain.reorg(3, [(), (tip,), ()])  # B: the same transaction one block later
    r = tips.scan()
    assert (r.reversed, r.counted) == (1, 1)
    chain.restore(fork_a)  # A again: back in its first block, same hash as when first booked
    r = tips.scan()
    assert (r.reversed, r.counted) == (1, 1)
    assert journal.balance(WALLET) == 700_000
    (row,) = live_rows(journal)
    assert row.block_hash == chain.canonical[1]


# -- scenario 5: a node behind is waited for, not believed ---------------------------------------------


def test_scenario_5_a_lagging_head_below_the_cursor_reverses_nothing(journal: Journal) -> None:
    chain = Chain()
    before_tip = chain.canonical
    chain.mine((chain.transfer(FUNDER, AGENT, 3_000_000),))
    chain.mine()
    node = FakeNode(chain)
    tips = scanner(node, journal)
    assert tips.scan().counted == 1
    where = cursor(journal)

    node.lag = before_tip  # one answer from a backend that has not seen the tip's block yet
    r = tips.scan()
    assert r.reversed == 0 and r.counted == 0
    assert r.behind and "behind" in r.note
    assert journal.balance(WALLET) == 3_000_000 and cursor(journal) == where

    node.lag = None  # it caught up
    chain.mine()
    r = tips.scan()
    assert (r.reversed, r.counted, r.note, r.behind) == (0, 0, "", False)
    assert journal.balance(WALLET) == 3_000_000 and journal.balance(TIPS) == -3_000_000


def test_scenario_5_a_counted_block_reported_missing_is_not_a_reorg(journal: Journal) -> None:
    chain = Chain()
    chain.mine()
    behind = chain.canonical
    chain.mine((chain.transfer(FUNDER, AGENT, 1_000_000),))
    chain.mine()
    node = FakeNode(chain)
    tips = scanner(node, journal)
    assert tips.scan().counted == 1
    chain.mine()

    node.lag, node.mixed = behind, True  # the head from a current backend, the blocks from a lagging one
    r = tips.scan()
    assert r.reversed == 0 and r.behind and "behind" in r.note
    assert journal.balance(WALLET) == 1_000_000

    node.lag, node.mixed = None, False
    r = tips.scan()
    assert (r.reversed, r.counted, r.note) == (0, 0, "")
    assert journal.balance(WALLET) == 1_000_000


def test_a_log_query_answered_by_a_lagging_backend_books_nothing_and_is_read_again(journal: Journal) -> None:
    chain = Chain()
    behind = chain.canonical
    chain.mine((funding(chain, 5_000_000),))
    chain.mine()
    node = FakeNode(chain)
    tips = scanner(node, journal)
    # calls: block_number, get_block(end), get_logs, get_block(end): only get_logs hits the lagging backend
    node.at_call(2, lambda: setattr(node, "lag", behind))
    node.at_call(3, lambda: setattr(node, "lag", None))
    r = tips.scan()
    assert r.counted == 0 and "behind" in r.note and cursor(journal) is None
    r = tips.scan()
    assert (r.counted, r.counted_ucr) == (1, 5_000_000)
    assert journal.balance(OPENING) == -5_000_000


def test_a_reorg_between_the_log_query_and_the_block_check_books_nothing(journal: Journal) -> None:
    chain = Chain()
    tip = chain.transfer(FUNDER, AGENT, 400_000)
    chain.mine((tip,))
    chain.mine()
    chain.mine()
    node = FakeNode(chain)
    tips = scanner(node, journal)
    # the logs come from fork A, then the chain moves the tip one block later (fork B) before the hash check
    node.at_call(3, lambda: chain.reorg(3, [(), (tip,), ()]))
    r = tips.scan()
    assert r.counted == 0 and "changed" in r.note
    r = tips.scan()
    assert r.counted == 1
    (row,) = live_rows(journal)
    assert row.block_hash == chain.canonical[2]


# -- scenario 16: "too many logs" is an answer, not a bug ------------------------------------------


def test_scenario_16_logs_range_too_large_is_halved_until_the_node_answers(journal: Journal) -> None:
    chain = Chain()
    for i in range(6):
        chain.mine((chain.transfer(FUNDER, AGENT, 100_000 * (i + 1)),))
    node = FakeNode(chain)
    node.max_results = 2  # "query returned more than 2 results" (-32005) over more than one block
    r = scanner(node, journal, confirmations=0).scan()
    assert (r.counted, r.counted_ucr, r.to_block) == (6, 2_100_000, 6)
    assert journal.balance(TIPS) == -2_100_000


def test_scenario_16_logs_range_learned_is_kept_for_the_next_scans(journal: Journal) -> None:
    from wallet.scanner import LogRange

    chain = Chain()
    for _ in range(20):
        chain.mine((chain.transfer(FUNDER, AGENT, 10_000),))
    node = FakeNode(chain)
    node.max_range = 4  # "block range too large, max 4 blocks"
    learned = LogRange(100)
    assert scanner(node, journal, confirmations=0, log_range=learned).scan().counted == 20
    assert learned.limit <= 4
    for _ in range(8):
        chain.mine((chain.transfer(FUNDER, AGENT, 10_000),))
    node.calls.clear()
    r = scanner(node, journal, confirmations=0, log_range=learned).scan()  # a new scanner, the same wallet
    assert r.counted == 8
    assert node.calls.count("eth_getLogs") == -(-8 // learned.limit)  # none refused: it began at the learned size


def test_scenario_16_logs_range_refused_for_one_block_is_retryable(journal: Journal) -> None:
    from wallet.scanner import LogRangeRefused

    chain = Chain()
    chain.mine((chain.transfer(FUNDER, AGENT, 10_000),))
    node = FakeNode(chain)
    node.max_range = 0  # refuses everything as too large
    with pytest.raises(LogRangeRefused) as err:
        scanner(node, journal, confirmations=0).scan()
    assert isinstance(err.value, RpcUnavailable) and err.value.operation == "get_logs"
    assert journal.balance(WALLET) == 0


def test_scenario_16_logs_other_json_rpc_errors_are_retryable(journal: Journal) -> None:
    chain = Chain()
    chain.mine((chain.transfer(FUNDER, AGENT, 10_000),))

    class Refusing(FakeNode):
        def get_logs(self, query: dict) -> list[dict]:
            raise rpc_error(-32000, "internal error: database closed")

    with pytest.raises(RpcUnavailable) as err:
        scanner(Refusing(chain), journal, confirmations=0).scan()
    assert "-32000" in err.value.cause and "database closed" in err.value.cause
