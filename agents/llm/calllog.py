"""The LLM call log: one row per request sent (or refused), like simonw/llm's `responses` log.

Rows hold no prompt text and no secret: role, model, endpoint (without
credentials), tokens, cost in ucr, latency, task and cycle ids, outcome and
the error class. Reports and benchmarks read it through `CallLog`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, Column, Engine, func, select
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kernel.clock import utcnow
from kernel.db import migrate

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_agents_llm"

# Outcomes of one row.
OK = "ok"  # answered; cost posted from reported usage
ERROR = "error"  # refused by the endpoint or never sent (see error_class); reported usage posted, else released
REFUSED = "refused"  # never sent: no price, a cap or the budget said no
INVALID = "invalid_output"  # answered, but the reply did not validate against the response model
AMBIGUOUS = "ambiguous"  # sent, no verdict back (timeout, reset, 5xx): the held worst case was booked

llm_registry = registry()
metadata = llm_registry.metadata


class LLMBase(SQLModel, registry=llm_registry):
    pass


class LLMCall(LLMBase, table=True):
    __tablename__ = "llm_call"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(default_factory=utcnow, index=True)
    role: str = Field(max_length=32)
    model: str = Field(max_length=200)
    endpoint: str = Field(default="", max_length=500)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))  # ucr
    reserved: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))  # ucr held
    latency_ms: int = 0
    task_id: str | None = Field(default=None, max_length=64, index=True)
    cycle_id: str | None = Field(default=None, max_length=64, index=True)
    outcome: str = Field(max_length=16)
    error_class: str | None = Field(default=None, max_length=100)
    status_code: int | None = None
    attempt: int = 1
    reservation_id: int | None = None


CALL = LLMCall.__table__


@dataclass(frozen=True)
class CallRecord:
    """What one request cost and how it ended; written as one `llm_call` row."""

    role: str
    model: str
    endpoint: str
    outcome: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost: int = 0
    reserved: int = 0
    latency_ms: int = 0
    task_id: str | None = None
    cycle_id: str | None = None
    error_class: str | None = None
    status_code: int | None = None
    attempt: int = 1
    reservation_id: int | None = None
    time: datetime | None = None


@dataclass(frozen=True)
class Totals:
    """Sums over a set of call rows."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class CallLog:
    """Append and query `llm_call` rows on one engine."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def migrate(self) -> None:
        """Create or upgrade the call-log table."""
        migrate(self.engine, MIGRATIONS, VERSION_TABLE)

    def record(self, rec: CallRecord) -> int:
        """Append one row; returns its id."""
        values = {k: v for k, v in rec.__dict__.items() if k != "time"}
        values["time"] = rec.time or utcnow()
        with self.engine.begin() as conn:
            return int(conn.execute(CALL.insert().values(**values).returning(CALL.c.id)).scalar_one())

    def calls(self, *, cycle_id: str | None = None, task_id: str | None = None, role: str | None = None) -> list[CallRecord]:
        """Rows in insertion order, filtered by cycle, task and/or role."""
        query = select(CALL).order_by(CALL.c.id)
        query = _filtered(query, cycle_id=cycle_id, task_id=task_id, role=role)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        fields = CallRecord.__dataclass_fields__
        return [CallRecord(**{k: v for k, v in row.items() if k in fields}) for row in rows]

    def totals(self, *, cycle_id: str | None = None, task_id: str | None = None, role: str | None = None) -> Totals:
        """Requests sent (refusals excluded), tokens and cost, filtered like `calls`."""
        query = select(
            func.count(),
            func.coalesce(func.sum(CALL.c.input_tokens), 0),
            func.coalesce(func.sum(CALL.c.output_tokens), 0),
            func.coalesce(func.sum(CALL.c.cost), 0),
        ).where(CALL.c.outcome != REFUSED)
        query = _filtered(query, cycle_id=cycle_id, task_id=task_id, role=role)
        with self.engine.connect() as conn:
            n, tin, tout, cost = conn.execute(query).one()
        return Totals(int(n), int(tin), int(tout), int(cost))


def _filtered(query, **where):  # noqa: ANN001, ANN202
    for name, value in where.items():
        if value is not None:
            query = query.where(CALL.c[name] == value)
    return query
