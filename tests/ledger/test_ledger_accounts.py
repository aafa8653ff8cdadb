"""The chart of accounts has one home: no product code outside ledger/accounts.py writes an account name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ledger.accounts import (
    COMPUTE,
    KINDS,
    PROVIDERS,
    WALLET,
    compute_account,
    engagement_account,
    leaf,
    provider_account,
    sql_under,
    under,
)
from ledger.errors import InvalidPosting

REPO = Path(__file__).resolve().parents[2]
ROOMS = ("agents", "config", "daemon", "kernel", "ledger", "publishers", "wallet", "website")
HOME = REPO / "ledger" / "accounts.py"
# "expenses:" anywhere in a string (an f-string's text, a SQL condition) names an account or a prefix.
NAMED = re.compile(rf"\b(?:{'|'.join(KINDS)}):")
# A bare kind handed to a call that reads accounts: journal.balance("income"), name.startswith("income").
BARE = re.compile(rf"^(?:{'|'.join(KINDS)})$")
ACCOUNT_CALLS = {"balance", "startswith", "removeprefix", "endswith", "Entry"}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def account_literals(path: Path) -> list[str]:
    """Every string in the file's code (docstrings and comments aside) that writes an account name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if NAMED.search(node.value):
                found.append(f"{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for arg in node.args:
                if name in ACCOUNT_CALLS and isinstance(arg, ast.Constant) and BARE.match(str(arg.value)):
                    found.append(f"{node.lineno}: {name}({arg.value!r})")
    return found


def product_files() -> list[Path]:
    files = []
    for room in ROOMS:
        for path in sorted((REPO / room).rglob("*.py")):
            if "migrations" not in path.relative_to(REPO).parts and path != HOME:
                files.append(path)
    return files


def test_no_account_literal_outside_ledger_accounts() -> None:
    bad = [f"{p.relative_to(REPO)}:{hit}" for p in product_files() for hit in account_literals(p)]
    assert not bad, "account names belong in ledger/accounts.py; import them:\n" + "\n".join(bad)


def test_the_guard_catches_literals_and_leaves_prose(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        '"""Docstrings may name expenses:compute:<agent>."""\n'
        "# so may comments: liabilities:provider:x\n"
        'A = "assets:wallet"\n'
        "B = f\"expenses:compute:{A}\"\n"
        "C = \"substr(account, 1, 7) = 'income:'\"\n"
        'D = journal.balance("income")\n'
        'E = {"income": 1, "spend": 2}\n'
    )
    hits = account_literals(planted)
    assert sorted(int(h.split(":")[0]) for h in hits) == [3, 4, 5, 6], hits
    assert len(product_files()) > 50  # the walk sees the product, not an empty folder


def test_names_prefixes_and_sql_come_from_one_place() -> None:
    assert compute_account("Writer Bot") == f"{COMPUTE}:writer-bot"
    assert leaf(provider_account("embedded"), PROVIDERS) == "embedded"
    assert engagement_account("devto").split(":")[:2] == ["income", "engagement"]
    assert under(WALLET, WALLET) and under(f"{WALLET}:eth", WALLET) and not under("assets:walletx", WALLET)
    assert sql_under(WALLET) == "(account = 'assets:wallet' OR substr(account, 1, 14) = 'assets:wallet:')"
    assert sql_under("expenses", "p.account") == "substr(p.account, 1, 9) = 'expenses:'"
    with pytest.raises(InvalidPosting):
        compute_account("!!!")
    with pytest.raises(InvalidPosting):
        sql_under("x'; drop table ledger_txn; --")
