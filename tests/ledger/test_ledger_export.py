"""The exports, checked by the real tools: `hledger -f FILE bal` and `bean-check`, to the micro-credit."""

from __future__ import annotations

import ast
import csv
import io
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger import Entry, Journal
from ledger.accounts import GAS, NATIVE
from ledger.export import amount_text, beancount_account, decimal_text, decimals_of, export
from ledger.reports import build_report
from tests.ledger.conftest import Clock
from tests.ledger.ledgerdata import populate

HLEDGER = shutil.which("hledger")
BEAN_CHECK = Path(sys.executable).with_name("bean-check")
UCR = Decimal(1_000_000)


def write(journal: Journal, fmt: str, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        export(journal, fmt, fh)
    return path


def ucr(text: str, commodity: str = "CR") -> int:
    """A decimal as the tools print it, in the commodity's smallest unit (micro-credits, wei)."""
    value = Decimal(text) * 10 ** decimals_of(commodity)
    assert value == value.to_integral_value(), text
    return int(value)


def hledger_balances(path: Path) -> dict[str, dict[str, int]]:
    """account -> commodity -> micro-units, as `hledger bal` (flat, exclusive) prints them."""
    out = subprocess.run(
        [HLEDGER, "-f", str(path), "bal", "--flat", "-N", "-O", "csv"], check=True, capture_output=True, text=True
    ).stdout
    balances: dict[str, dict[str, int]] = {}
    for account, amounts in list(csv.reader(io.StringIO(out)))[1:]:
        for amount in amounts.split(", "):
            if amount.strip() in ("0", ""):
                continue
            number, commodity = amount.split()
            balances.setdefault(account, {})[commodity] = ucr(number, commodity)
    return balances


def ours(journal: Journal) -> dict[str, dict[str, int]]:
    balances: dict[str, dict[str, int]] = defaultdict(dict)
    for commodity in journal.commodities():
        for account, amount in journal.balances(commodity).items():
            if amount:
                balances[account][commodity] = amount
    return dict(balances)


@pytest.mark.skipif(HLEDGER is None, reason="hledger is not installed (tests/peers/apt.sh installs it)")
def test_hledger_balances_equal_ours_and_the_report(journal: Journal, clock: Clock, tmp_path: Path) -> None:
    budget = populate(journal, clock)
    path = write(journal, "hledger", tmp_path / "selfpub.journal")
    theirs = hledger_balances(path)
    assert theirs == ours(journal)
    report = build_report(journal, budget)
    assert theirs["assets:wallet"]["CR"] == report.balance
    assert -theirs["income:tips"]["CR"] == report.tips
    for platform, amount in report.engagement.items():
        assert -theirs[f"income:engagement:{platform}"]["CR"] == amount
    for agent, amount in report.spend_by_agent.items():
        assert theirs[f"expenses:compute:{agent}"]["CR"] == amount
    assert -theirs["liabilities:provider:embedded"]["CR"] == report.liabilities
    # hledger counts the same transactions.
    stats = subprocess.run([HLEDGER, "-f", str(path), "stats"], check=True, capture_output=True, text=True).stdout
    with journal.engine.connect() as conn:
        txns = conn.execute(text("SELECT COUNT(*) FROM ledger_txn")).scalar_one()
    counted = [line.split(":", 1)[1].split()[0] for line in stats.splitlines() if line.split(":")[0].strip() == "Transactions"]
    assert counted == [str(txns)], stats


@pytest.mark.skipif(HLEDGER is None, reason="hledger is not installed (tests/peers/apt.sh installs it)")
def test_hledger_check_strict_accepts_the_export(journal: Journal, clock: Clock, tmp_path: Path) -> None:
    """Every account and commodity is declared (issue 14.6: `hledger check --strict` failed)."""
    populate(journal, clock)
    path = write(journal, "hledger", tmp_path / "selfpub.journal")
    result = subprocess.run([HLEDGER, "-f", str(path), "check", "--strict"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    undeclared = path.read_text().replace("account assets:wallet\n", "")  # the check is real: drop one
    path.write_text(undeclared)
    result = subprocess.run([HLEDGER, "-f", str(path), "check", "--strict"], capture_output=True, text=True)
    assert result.returncode != 0 and "assets:wallet" in result.stderr


def test_bean_check_accepts_the_file_and_its_balance_assertions(journal: Journal, clock: Clock, tmp_path: Path) -> None:
    populate(journal, clock)
    path = write(journal, "beancount", tmp_path / "selfpub.beancount")
    result = subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # The same totals through beancount's own loader.
    from beancount import loader

    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        for posting in getattr(entry, "postings", None) or ():
            totals[posting.account][posting.units.currency] += ucr(str(posting.units.number), posting.units.currency)
    flat = {a: {c: v for c, v in cs.items() if v} for a, cs in totals.items()}
    want = {beancount_account(a): cs for a, cs in ours(journal).items()}
    assert {a: cs for a, cs in flat.items() if cs} == want


def test_bean_check_fails_when_a_balance_is_off(journal: Journal, clock: Clock, tmp_path: Path) -> None:
    """The balance assertions are real: tamper with one posting and bean-check says so."""
    populate(journal, clock, days=2)
    path = write(journal, "beancount", tmp_path / "selfpub.beancount")
    exported = path.read_text()
    # One micro-credit moved from the opening deposit: both legs still balance, the totals do not.
    tampered = exported.replace(" 20.000000 CR", " 20.000001 CR", 1).replace("-20.000000 CR", "-20.000001 CR", 1)
    assert tampered != exported
    path.write_text(tampered)
    result = subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "Balance failed" in result.stdout + result.stderr


def test_empty_ledger_exports(journal: Journal, tmp_path: Path) -> None:
    bean = write(journal, "beancount", tmp_path / "empty.beancount")
    assert subprocess.run([str(BEAN_CHECK), str(bean)], capture_output=True).returncode == 0
    if HLEDGER:
        hl = write(journal, "hledger", tmp_path / "empty.journal")
        assert subprocess.run([HLEDGER, "-f", str(hl), "bal"], capture_output=True).returncode == 0


def test_names_and_amounts() -> None:
    assert beancount_account("liabilities:provider:open-router") == "Liabilities:Provider:Open-router"
    assert beancount_account("expenses:compute:3rd-agent") == "Expenses:Compute:3rd-agent"
    assert decimal_text(-1_250_000) == "-1.250000"
    assert decimal_text(5) == "0.000005"
    assert decimal_text(0) == "0.000000"
    assert amount_text(21_000_000_000_000, "WEI") == "21000000000000" and amount_text(-7, "WEI") == "-7"
    assert amount_text(1_250_000, "CR") == "1.250000"
    with pytest.raises(ValueError, match="hledger"):
        export(None, "ledger", io.StringIO())  # type: ignore[arg-type]


def _gas(journal: Journal, wei: int) -> None:
    journal.post("gas", [Entry(GAS, wei, "WEI"), Entry(NATIVE, -wei, "WEI")], idempotency_key=f"gas:{wei}")


def test_gas_is_exported_in_whole_wei(journal: Journal, tmp_path: Path) -> None:
    """Gas is an integer of wei: no tool may read it as a fraction of a wei (issue 14.6)."""
    _gas(journal, 21_000 * 1_000_000_007)
    hl = write(journal, "hledger", tmp_path / "gas.journal").read_text()
    bean = write(journal, "beancount", tmp_path / "gas.beancount").read_text()
    for text in (hl, bean):
        assert "21000000147000 WEI" in text and "-21000000147000 WEI" in text
        assert not re.search(r"\d\.\d+ WEI", text), text
    assert "commodity 1. WEI" in hl
    assert subprocess.run([str(BEAN_CHECK), str(tmp_path / "gas.beancount")], capture_output=True).returncode == 0
    if HLEDGER:
        assert hledger_balances(tmp_path / "gas.journal") == ours(journal)
        check = subprocess.run([HLEDGER, "-f", str(tmp_path / "gas.journal"), "check", "--strict"], capture_output=True)
        assert check.returncode == 0, check.stderr


GAS_PATH = ("wallet/settlement.py", "wallet/paychain.py", "ledger/export.py", "ledger/reports.py", "ledger/manual.py")
MONEY = re.compile(r"(wei|gas|ucr|amount|cost|price|fee|owed|balance|deposit|tip)s?$", re.I)


def _floaty(node: ast.AST) -> str:
    """Why an expression may be a float (a float() call, a float literal, a true division), or ""."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "float":
            return "float()"
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Div):
            return "a true division"
        if isinstance(sub, ast.Constant) and type(sub.value) is float:
            return f"the float {sub.value!r}"
    return ""


def _name(target: ast.AST) -> str:
    return target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""


def test_no_float_on_the_money_path() -> None:
    """Gas and money stay integers from the chain's receipt to the report: nothing named like money is typed
    float or computed with float(), a float literal or `/` (time and ratios may be floats)."""
    root = Path(__file__).resolve().parents[2]
    found = []
    for path in GAS_PATH:
        for node in ast.walk(ast.parse((root / path).read_text(), path)):
            named: list[tuple[str, ast.AST | None, ast.AST | None]] = []  # (name, annotation, value)
            if isinstance(node, ast.arg):
                named.append((node.arg, node.annotation, None))
            elif isinstance(node, ast.AnnAssign):
                named.append((_name(node.target), node.annotation, node.value))
            elif isinstance(node, ast.Assign):
                named += [(_name(t), None, node.value) for t in node.targets]
            elif isinstance(node, ast.keyword) and node.arg:
                named.append((node.arg, None, node.value))
            for name, annotation, value in named:
                if not MONEY.search(name or ""):
                    continue
                if annotation is not None and "float" in ast.unparse(annotation):
                    found.append(f"{path}:{node.lineno} {name} is typed {ast.unparse(annotation)}")
                if value is not None and _floaty(value):
                    found.append(f"{path}:{node.lineno} {name} = ... {_floaty(value)}")
    assert found == []
