"""The status page and /metrics show the sustain ratio, the tier in force and why, read through the real server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from agents.tasks import TaskStore
from config.settings import Settings
from daemon.http import StatusServer
from ledger import TIPS, WALLET, Entry, compute_account, provider_account
from ledger.funding import deposit
from tests.daemon.test_service import CR, Recorder, make_service


def _settings(tmp_path: Path, **sustain: object) -> Settings:
    return Settings(state_dir=tmp_path / "state", budget={"min_balance": "1", "resume_balance": "2"},
                    http={"enabled": False}, sustain=sustain)


def _service(db_url: str, tmp_path: Path, **sustain: object):  # noqa: ANN202
    svc = make_service(db_url, tmp_path, Recorder([]), settings=_settings(tmp_path, **sustain))
    TaskStore(svc.engine).migrate()  # the page lists drafts held for approval
    return svc


async def _get(svc, path: str) -> str:  # noqa: ANN001
    server = StatusServer(svc, "127.0.0.1", 0)
    await server.start()
    try:
        host, port = server.address
        async with httpx.AsyncClient(timeout=30) as http:
            return (await http.get(f"http://{host}:{port}{path}")).text
    finally:
        await server.stop()


async def test_status_page_and_metrics_show_the_tier_and_why(db_url: str, tmp_path: Path) -> None:
    svc = _service(db_url, tmp_path, enabled=True, expand_at="1.5")
    now = datetime.now(timezone.utc)
    deposit(svc.journal, 10 * CR, time=now - timedelta(days=2))
    svc.journal.post("compute", [Entry(compute_account("writer"), 800_000), Entry(provider_account("x"), -800_000)],
                     idempotency_key="cpu", time=now - timedelta(hours=2))
    svc.journal.post("tip", [Entry(WALLET, 1_300_000), Entry(TIPS, -1_300_000)], idempotency_key="tip",
                     time=now - timedelta(hours=1))
    svc.journal.post("tip", [Entry(WALLET, 9 * CR), Entry(TIPS, -9 * CR)], idempotency_key="old-tip",
                     time=now - timedelta(hours=30))  # outside the 24 h window

    await svc.refresh(max_age=0)
    page = await _get(svc, "/")
    assert "expand (1.62)" in page
    assert "sustain expand: income 1.30 cr / cost 0.80 cr over 24 h = 1.62 &gt;= 1.50" in page

    metrics = await _get(svc, "/metrics")
    assert 'selfpub_sustain_tier{tier="expand"} 1.0' in metrics
    assert 'selfpub_sustain_tier{tier="conserve"} 0.0' in metrics
    assert "selfpub_sustain_ratio 1.625" in metrics
    assert "selfpub_sustain_income_credits 1.3" in metrics and "selfpub_sustain_cost_credits 0.8" in metrics


async def test_status_page_says_when_there_is_too_little_history(db_url: str, tmp_path: Path) -> None:
    svc = _service(db_url, tmp_path, enabled=True)
    deposit(svc.journal, 10 * CR)
    await svc.refresh(max_age=0)
    page = await _get(svc, "/")
    assert "normal (n/a)" in page and "too little history" in page
    metrics = await _get(svc, "/metrics")
    assert 'selfpub_sustain_tier{tier="normal"} 1.0' in metrics
    assert "selfpub_sustain_ratio" not in metrics  # no cost yet: no ratio to report
