"""The chart of accounts: every account name and prefix the code uses, defined once.

    assets:wallet                 on-chain credit token balance (reconciled); sub-accounts
                                  (assets:wallet:<x>) count towards it
    assets:native                 the chain's native coin for gas (commodity WEI)
    assets:receivable:engagement  engagement income accrued, not yet received
    liabilities:provider:<name>   compute consumed, not yet paid on chain
    expenses:compute:<agent>      what each agent's LLM calls cost
    expenses:gas                  gas of settlement payments (WEI)
    expenses:dust                 rounding of a payment up to whole token units
    income:tips                   credit-token transfers into the wallet
    income:engagement:<platform>  accrued from views/reactions/likes at configured rates
    equity:opening                deposits and mints

A name is `<kind>:<part>[:<part>...]`, kind one of KINDS, each part lowercase
letters, digits and '-' (so hledger and beancount take it as it is). A parent
(WALLET, PROVIDERS, COMPUTE, ...) names itself and every account under it:
`under(account, PROVIDERS)`, `leaf(account, COMPUTE)` -> the agent.
Nothing outside this module writes an account name as a literal
(tests/ledger/test_ledger_accounts.py greps for it).
"""

from __future__ import annotations

import re

from ledger.errors import InvalidPosting

COMMODITY = "CR"  # micro-credits of the credit token (ledger.models re-exports it for the tables)

KINDS = ("assets", "liabilities", "income", "expenses", "equity")
ASSETS, LIABILITIES, INCOME, EXPENSES, EQUITY = KINDS

WALLET = "assets:wallet"
NATIVE = "assets:native"
RECEIVABLE_ENGAGEMENT = "assets:receivable:engagement"
PROVIDERS = "liabilities:provider"
COMPUTE = "expenses:compute"
GAS = "expenses:gas"
DUST = "expenses:dust"
TIPS = "income:tips"
ENGAGEMENT = "income:engagement"
READS = "income:reads"  # paid reads over x402, per kind (article, brief)
OPENING = "equity:opening"

# Income and expense postings are the ones with a model and a task dimension (rollups, P&L).
DIMENSIONED = (INCOME, EXPENSES)
_DIMENSIONED = (INCOME + ":", EXPENSES + ":")
_EXPENSE = EXPENSES + ":"
_INCOME = INCOME + ":"

ACCOUNT_RE = re.compile(rf"^(?:{'|'.join(KINDS)})(?::[a-z0-9][a-z0-9-]*)+$")
MAX_ACCOUNT = 200
_SLUG_BAD = re.compile(r"[^a-z0-9-]+")


def prefix(parent: str) -> str:
    """What every account under `parent` starts with ("expenses" -> "expenses:")."""
    return parent + ":"


def under(account: str, *parents: str) -> bool:
    """Whether `account` is one of `parents` or below one of them."""
    return any(account == p or account.startswith(p + ":") for p in parents)


def is_expense(account: str) -> bool:
    """Whether an account is an expense (fast: on the posting hot path)."""
    return account.startswith(_EXPENSE)


def is_income(account: str) -> bool:
    """Whether an account is income."""
    return account.startswith(_INCOME)


def dimensioned(account: str) -> bool:
    """Whether an account's postings are summed per model and per task (income and expenses)."""
    return account.startswith(_DIMENSIONED)


def leaf(account: str, parent: str) -> str:
    """The rest of an account's name below `parent` ("expenses:compute:writer", COMPUTE -> "writer")."""
    return account.removeprefix(parent + ":")


def account_part(name: str) -> str:
    """A name (agent, provider, platform) as one account part: lowercase, [a-z0-9-]."""
    part = _SLUG_BAD.sub("-", name.strip().lower()).lstrip("-")
    if not part:
        raise InvalidPosting(f"{name!r} cannot name an account: use letters or digits")
    return part


def compute_account(agent: str) -> str:
    """expenses:compute:<agent>."""
    return f"{COMPUTE}:{account_part(agent)}"


def provider_account(provider: str) -> str:
    """liabilities:provider:<name>."""
    return f"{PROVIDERS}:{account_part(provider)}"


def engagement_account(platform: str) -> str:
    """income:engagement:<platform>."""
    return f"{ENGAGEMENT}:{account_part(platform)}"


def reads_account(kind: str) -> str:
    """income:reads:<kind>."""
    return f"{READS}:{account_part(kind)}"


def check_account(name: str) -> None:
    """Refuse an account name hledger, beancount or our reports would misread."""
    if type(name) is not str or len(name) > MAX_ACCOUNT or not ACCOUNT_RE.match(name):
        raise InvalidPosting(
            f"account {name!r} must look like '<{'|'.join(KINDS)}>:name[:sub]' with each name "
            f"lowercase letters, digits and '-' (at most {MAX_ACCOUNT} characters)"
        )


def sql_under(parent: str, column: str = "account") -> str:
    """A SQL condition: `column` is `parent` or below it (names are [a-z0-9:-], so safe to inline)."""
    if parent not in KINDS:
        check_account(parent)
    below = prefix(parent)
    starts = f"substr({column}, 1, {len(below)}) = '{below}'"
    return starts if parent in KINDS else f"({column} = '{parent}' OR {starts})"
