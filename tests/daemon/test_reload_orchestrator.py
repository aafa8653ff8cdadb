"""SIGHUP reaches the orchestrator: a reloaded setting changes the next cycle; a broken config keeps the old one.

The real wiring (build_service) on local stand-ins: FakeOpenAI on a socket, the spec-checking fake Dev.to,
the bundled sample feed served on 127.0.0.1, the SQLite ledger.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from config import load_settings
from daemon.demo.loop import sample_site
from daemon.service import Jobs
from daemon.wiring import build_service
from ledger.funding import deposit
from tests.e2e.support import ForemServer, Secrets, cli_env, cycle_config, fooled_model
from tests.fakes.openai import FakeOpenAI

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _recording(jobs: Jobs) -> list:
    """Wrap the wired cycle job so the test sees each cycle's CycleReport."""
    reports: list = []
    cycle = jobs.cycle

    async def recorded(ctx):  # noqa: ANN001, ANN202
        report = await cycle(ctx)
        reports.append(report)
        return report

    jobs.cycle = recorded
    return reports


async def test_sighup_rebuilds_the_orchestrator_and_a_broken_config_keeps_the_old_one(tmp_path: Path) -> None:
    secrets = Secrets.random()
    files = secrets.write(tmp_path / "secrets")
    llm = FakeOpenAI(default=fooled_model("", writer_payload=False), usage=(400, 200))
    forem = ForemServer(secrets.devto_api_key)
    with llm.serve() as llm_url, forem.running(), sample_site() as feed_url:
        def config(items: int, extra: str = "") -> Path:
            # The sustain rule off: a daemon that earns nothing would conserve to one item a cycle, and this test
            # is about the reload carrying items_per_cycle, not about the tier.
            return cycle_config(tmp_path, feeds=[feed_url], llm_url=llm_url, forem_url=forem.url, secret_files=files,
                                items_per_cycle=items, max_revisions=0, extra="[sustain]\nenabled = false\n" + extra)

        path = config(1)
        env = cli_env()
        svc = build_service(load_settings(path, env), config_path=path, environ=env)
        slot = svc.jobs.cycle.__self__  # the OrchestratorSlot behind the cycle job
        reports = _recording(svc.jobs)
        deposit(svc.journal, 10_000_000, idempotency_key="reload-test")

        await svc.cycle_job()
        assert [(r.planned, r.published) for r in reports] == [(1, 1)], reports[-1].errors
        assert len(forem.articles) == 1

        # more items per cycle, through a real SIGHUP on the running loop
        first = slot.current
        first_client = first.deps.research.fetcher.client
        path = config(2)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, svc.request_reload)
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(200):
                if slot.current is not first:
                    break
                await asyncio.sleep(0.05)
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
        assert slot.current is not first, "SIGHUP did not rebuild the orchestrator"
        assert slot.current.deps.settings.research.items_per_cycle == 2
        assert svc.settings.research.items_per_cycle == 2
        assert slot.current.deps.budget.settings == svc.budget.settings
        assert first.closers == [] and first_client.is_closed  # the old clients are closed, nothing in flight
        await svc.cycle_job()
        assert (reports[-1].planned, reports[-1].published) == (2, 2), reports[-1].errors
        assert len(forem.articles) == 3

        # approval mode: manual holds every draft from the next cycle on
        path = config(1, extra='[approval]\nmode = "manual"\n')
        assert await svc.reload() is True
        await svc.cycle_job()
        assert (reports[-1].planned, reports[-1].held, reports[-1].published) == (1, 1, 0), reports[-1].errors
        assert len(forem.articles) == 3

        # a broken config: the service and the orchestrator keep the previous settings
        kept = slot.current
        path.write_text(path.read_text().replace("items_per_cycle = 1", 'items_per_cycle = "lots"'))
        assert await svc.reload() is False
        assert slot.current is kept and not kept.deps.research.fetcher.client.is_closed
        assert "config reload failed" in svc.status_line()
        await svc.cycle_job()
        assert (reports[-1].planned, reports[-1].held, reports[-1].published) == (1, 1, 0), reports[-1].errors
        assert len(forem.articles) == 3
        assert forem.errors == []
        await slot.current.aclose()
        svc.engine.dispose()


async def test_a_reload_during_a_cycle_closes_the_old_clients_only_after_the_cycle(tmp_path: Path) -> None:
    secrets = Secrets.random()
    files = secrets.write(tmp_path / "secrets")
    gate = asyncio.Event()
    llm = FakeOpenAI(default=fooled_model("", writer_payload=False), usage=(400, 200))
    forem = ForemServer(secrets.devto_api_key)
    with llm.serve() as llm_url, forem.running(), sample_site() as feed_url:
        path = cycle_config(tmp_path, feeds=[feed_url], llm_url=llm_url, forem_url=forem.url, secret_files=files,
                            items_per_cycle=1, max_revisions=0)
        env = cli_env()
        svc = build_service(load_settings(path, env), config_path=path, environ=env)
        slot = svc.jobs.cycle.__self__
        deposit(svc.journal, 10_000_000, idempotency_key="reload-test")
        old = slot.current
        run_cycle = old.orchestrator.run_cycle

        async def slow_cycle(ctx=None, **kw):  # noqa: ANN001, ANN003, ANN202
            await gate.wait()  # the reload happens while this cycle holds the old orchestrator
            return await run_cycle(ctx, **kw)

        old.orchestrator.run_cycle = slow_cycle
        cycle = asyncio.create_task(svc.cycle_job())
        await asyncio.sleep(0.2)
        assert await svc.reload() is True
        assert slot.current is not old
        assert old.closers and not old.deps.research.fetcher.client.is_closed  # still in use: not closed yet
        gate.set()
        await asyncio.wait_for(cycle, 60)
        assert len(forem.articles) == 1  # the cycle in flight finished on its own clients
        assert old.closers == [] and old.deps.research.fetcher.client.is_closed
        await slot.current.aclose()
        svc.engine.dispose()
