"""Hand bookings: `ledger reverse` writes a correcting transaction (never an edit), `ledger pay-provider`
moves what is owed out of the wallet, once per ref and never more than is owed (issue 14.6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from config.settings import BudgetSettings
from daemon.cli import app
from ledger import OPENING, TIPS, WALLET, Budget, Entry, Journal, provider_account
from ledger.funding import deposit
from ledger.manual import ManualRefused, pay_provider, reverse_by_hand
from tests.ledger.conftest import Clock


def _rows(journal: Journal) -> list[tuple]:
    with journal.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT t.id, t.kind, t.reverses_id, p.account, p.amount FROM ledger_txn t "
            "JOIN ledger_posting p ON p.txn_id = t.id ORDER BY t.id, p.id"))]


def test_a_reversal_appends_the_opposite_postings_and_edits_nothing(journal: Journal) -> None:
    wrong = deposit(journal, 5_000_000, memo="typo: meant 0.5").txn_id
    before = _rows(journal)
    posted = reverse_by_hand(journal, wrong, "typo: meant 0.5")
    after = _rows(journal)
    assert after[: len(before)] == before  # the original rows stand as they were
    assert [r for r in after if r[0] == posted.txn_id] == [
        (posted.txn_id, "reversal", wrong, WALLET, -5_000_000), (posted.txn_id, "reversal", wrong, OPENING, 5_000_000)
    ]
    assert journal.balance(WALLET) == 0 and journal.verify() == []


def test_a_transaction_is_reversed_once_and_a_reversal_is_not_reversed(journal: Journal) -> None:
    wrong = deposit(journal, 1_000_000).txn_id
    first = reverse_by_hand(journal, wrong, "mistake").txn_id
    with pytest.raises(ManualRefused, match=f"already reversed by transaction {first}"):
        reverse_by_hand(journal, wrong, "again")
    with pytest.raises(ManualRefused, match="itself the reversal"):
        reverse_by_hand(journal, first, "undo the undo")
    with pytest.raises(ManualRefused, match="no transaction 999"):
        reverse_by_hand(journal, 999, "nothing")
    with pytest.raises(ManualRefused, match="--reason"):
        reverse_by_hand(journal, deposit(journal, 1).txn_id, "  ")
    assert journal.balance(WALLET) == 1


def test_a_charge_the_budget_still_owns_is_not_reversed(journal: Journal, clock: Clock) -> None:
    deposit(journal, 10_000_000)
    budget = Budget(journal, BudgetSettings(), clock=clock)
    hold = budget.reserve("writer", 90_000, provider="embedded")
    budget.mark_sent(hold)
    presumed = budget.book_worst_case(hold)  # no usage back yet: a late answer corrects this charge
    with pytest.raises(ManualRefused, match=f"reservation {hold.id}.*still owns.*presumed"):
        reverse_by_hand(journal, presumed, "provider says it never ran")
    budget.commit(hold, 40_000)  # now settled: a refund may be booked as a reversal
    posted = reverse_by_hand(journal, presumed, "provider refunded the worst case")
    assert posted.created


def test_chain_bookings_are_left_to_the_wallet(journal: Journal) -> None:
    tip = journal.post("tip", [Entry(WALLET, 7), Entry(TIPS, -7)], idempotency_key="tip:0xabc:0").txn_id
    with pytest.raises(ManualRefused, match="mirrors the chain"):
        reverse_by_hand(journal, tip, "not mine")


def _owe(journal: Journal, provider: str, amount: int) -> None:
    journal.post("compute", [Entry("expenses:compute:writer", amount), Entry(provider_account(provider), -amount)],
                 idempotency_key=f"owe:{provider}:{amount}")


def test_paying_a_provider_lowers_the_debt_and_the_wallet_not_available(journal: Journal, clock: Clock) -> None:
    deposit(journal, 10_000_000)
    _owe(journal, "openrouter", 3_000_000)
    budget = Budget(journal, BudgetSettings(), clock=clock)
    available = budget.snapshot().available
    paid = pay_provider(journal, "openrouter", 1_000_000, ref="inv-1")
    assert paid.created
    assert journal.balance(provider_account("openrouter")) == -2_000_000
    assert journal.balance(WALLET) == 9_000_000
    assert budget.snapshot().available == available
    again = pay_provider(journal, "openrouter", 1_000_000, ref="inv-1")
    assert again == type(paid)(paid.txn_id, False)  # idempotent by ref
    assert journal.balance(WALLET) == 9_000_000
    with pytest.raises(ManualRefused, match="inv-1.*already used"):
        pay_provider(journal, "openrouter", 2_000_000, ref="inv-1")
    with pytest.raises(ManualRefused, match="owed 2.000000.*more than that"):
        pay_provider(journal, "openrouter", 2_000_001, ref="inv-2")
    with pytest.raises(ManualRefused, match="owed 0.000000"):
        pay_provider(journal, "nobody", 1, ref="inv-3")
    pay_provider(journal, "openrouter", 2_000_000, ref="inv-2")
    assert journal.balance(provider_account("openrouter")) == 0 and journal.verify() == []


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli_config(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[database]\nurl = "{db_url}"\n')
    return cfg


def run(cfg: Path, *args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["--config", str(cfg), *args], catch_exceptions=False)


def test_cli_reverse_a_mistaken_deposit(cli_config: Path) -> None:
    out = run(cli_config, "ledger", "deposit", "20", "--memo", "meant 2")
    txn = int(out.stdout.rsplit("transaction ", 1)[1].rstrip(")\n"))
    assert run(cli_config, "ledger", "reverse", str(txn)).exit_code == 2  # --reason is required
    done = run(cli_config, "ledger", "reverse", str(txn), "--reason", "meant 2")
    assert done.exit_code == 0 and f"reversed transaction {txn}" in done.stdout
    twice = run(cli_config, "ledger", "reverse", str(txn), "--reason", "meant 2")
    assert twice.exit_code == 1 and "already reversed" in twice.stdout and "Traceback" not in twice.output
    report = json.loads(run(cli_config, "ledger", "report", "--format", "json").stdout)
    assert report["balance"] == 0 and report["funding"]["deposits"] == 0


def test_cli_pay_provider(cli_config: Path, tmp_path: Path) -> None:
    assert run(cli_config, "ledger", "deposit", "5").exit_code == 0
    from daemon.context import AppContext

    _owe(AppContext(cli_config, environ={}).journal, "embedded", 1_500_000)
    over = run(cli_config, "ledger", "pay-provider", "embedded", "2", "--ref", "r1")
    assert over.exit_code == 1 and "owed 1.500000" in over.stdout
    ok = run(cli_config, "ledger", "pay-provider", "embedded", "1.5", "--ref", "r1")
    assert ok.exit_code == 0 and "paid embedded 1.500000" in ok.stdout
    again = run(cli_config, "ledger", "pay-provider", "embedded", "1.5", "--ref", "r1")
    assert again.exit_code == 0 and "already booked" in again.stdout
    report = json.loads(run(cli_config, "ledger", "report", "--format", "json").stdout)
    assert report["liabilities"] == 0 and report["balance"] == 3_500_000


def test_cli_pay_provider_is_refused_on_a_chain_wallet(tmp_path: Path) -> None:
    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[wallet]\nmode = "embedded"\n')
    result = run(cfg, "ledger", "pay-provider", "embedded", "1")
    assert result.exit_code == 1 and "this wallet is 'embedded'" in result.stdout


def test_two_payments_at_once_never_pay_more_than_is_owed(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each payment reads what is owed under a lock on the balance rows: of two full payments, one is refused."""
    import threading
    import time

    deposit(journal, 10_000_000)
    _owe(journal, "embedded", 2_000_000)
    start, outcomes = threading.Barrier(2), []
    post_cursor = journal.post_cursor

    def slow_post(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - between the check and the write
        time.sleep(0.3)
        return post_cursor(*args, **kwargs)

    monkeypatch.setattr(journal, "post_cursor", slow_post)

    def pay(ref: str) -> None:
        start.wait()
        try:
            outcomes.append(pay_provider(journal, "embedded", 2_000_000, ref=ref).created)
        except ManualRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=pay, args=(f"race-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes, key=str) == [True, "refused"]
    assert journal.balance(provider_account("embedded")) == 0 and journal.balance(WALLET) == 8_000_000
