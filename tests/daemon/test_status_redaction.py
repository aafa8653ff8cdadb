"""Job error text never shows a secret: redacted when the service stores it, and again when the status
page renders it (rows stored before, or by an older version, are safe too). Read through the real
status HTTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from agents.tasks import TaskStore
from config.settings import Settings
from daemon.http import StatusServer
from daemon.models import JobRun
from daemon.logs import MASK
from daemon.service import PermanentJobError
from ledger.funding import deposit
from publishers.outbox import Outbox
from tests.daemon.test_service import CR, Recorder, make_service

RUNS = JobRun.__table__
INFURA_KEY = "9aa3d95b3bc440fa88ea12eaa4456161"
DB_PASSWORD = "Zq7-vN2pX9kLm4Rt"
DEVTO_KEY = "devto-KEY-3f9a1c77e2b54d"
OLD_ROW_KEY = "Kq8Y3xjXq7Z2bXhO3Lq9sHk4yLmN0pAb"


def _settings(tmp_path: Path) -> Settings:
    s = Settings(state_dir=tmp_path / "state", budget={"min_balance": "1", "resume_balance": "2"},
                 http={"enabled": False})
    pubs = s.publishers.model_copy(update={
        "devto": s.publishers.devto.model_copy(update={"api_key_value": SecretStr(DEVTO_KEY)})})
    return s.model_copy(update={"publishers": pubs})


async def test_scenario_15_job_error_redacted_on_status_page(db_url: str, tmp_path: Path) -> None:
    error = PermanentJobError(
        f"POST https://mainnet.infura.io/v3/{INFURA_KEY} answered 401; "
        f"the ledger at postgresql://selfpub:{DB_PASSWORD}@db.internal:5432/selfpub refused us; "
        f"dev.to said: bad api-key {DEVTO_KEY}")
    svc = make_service(db_url, tmp_path, Recorder([], error=error), settings=_settings(tmp_path))
    deposit(svc.journal, 10 * CR)
    await svc.cycle_job()
    # a row written before redaction on write existed (an older version, or another writer)
    with svc.engine.begin() as conn:
        conn.execute(RUNS.insert().values(
            persona=svc.settings.persona, job="settle", instance="old:1", outcome="failed",
            started_at=datetime.now(timezone.utc), finished_at=datetime.now(timezone.utc),
            detail=f"RPCError: https://eth-mainnet.g.alchemy.com/v2/{OLD_ROW_KEY} rate limited"))

    with svc.engine.connect() as conn:
        stored = conn.execute(select(RUNS.c.detail).where(RUNS.c.job == "cycle")).scalars().all()
    assert len(stored) == 1 and "PermanentJobError" in stored[0]
    assert not [s for s in (INFURA_KEY, DB_PASSWORD, DEVTO_KEY) if s in stored[0]], stored[0]
    assert "https://mainnet.infura.io/v3/" in stored[0] and "db.internal:5432" in stored[0]  # still useful

    TaskStore(svc.engine).migrate()  # the console lists held drafts and published posts
    Outbox(svc.engine).migrate()
    server = StatusServer(svc, "127.0.0.1", 0)
    await server.start()
    try:
        host, port = server.address
        async with httpx.AsyncClient(timeout=30) as http:
            page = (await http.get(f"http://{host}:{port}/")).text
    finally:
        await server.stop()
    assert "Recent failures" in page and "eth-mainnet.g.alchemy.com/v2/" in page and "mainnet.infura.io" in page
    leaked = [s for s in (INFURA_KEY, DB_PASSWORD, DEVTO_KEY, OLD_ROW_KEY) if s in page]
    assert leaked == [] and page.count(MASK) >= 4
