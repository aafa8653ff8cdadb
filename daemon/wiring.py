"""Build the long-running Service from Settings: the only place that assembles real pieces for `selfpub run`.

Every room is ours and always installed: nothing here is guarded by `except ImportError`. The
heavy rooms (web3, the agents and their clients) are imported inside the functions that build
them, so the other commands that import this module do not pay for them at start.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from agents.cycle import CycleContext
from config.loader import load_settings
from config.settings import Settings
from daemon.lock import CycleLock
from daemon.memory import trim_heap
from daemon.notify import Notifier
from daemon.redact import Redactor, secret_values
from daemon.service import (
    DEFAULT_STOP_GRACE_SECONDS,
    ErrorPolicy,
    Jobs,
    Service,
)
from daemon.state import open_state
from daemon.status import StatusReader
from daemon.threads import call_job, in_thread
from ledger.budget import Budget
from ledger.journal import Journal

if TYPE_CHECKING:  # the rooms behind these load web3 and the model clients: imported where they are built
    from opentelemetry.trace import Tracer

    from agents.orchestrator import CycleReport
    from daemon.wiring_agents import AgentsRuntime
    from daemon.wiring_wallet import AnyWallet
    from wallet.reconcile import ReconcileResult
    from wallet.x402spend import SpendReconcile
    from wallet.scanner import ScanResult
    from wallet.settlement import SettleReport
    from website import SiteServer

log = logging.getLogger("selfpub.wiring")
JobsFactory = Callable[[Settings, Journal, Budget], Jobs]  # what build_service runs: real_jobs, or a test's


def error_policy() -> ErrorPolicy:
    """The job error policy: room errors say `retryable` themselves; these foreign types are passing too."""
    return ErrorPolicy(retryable=(
        TimeoutError, ConnectionError,
        OperationalError,  # SQLAlchemy's: the database went away for a moment (sqlite3's own is a bug)
        httpx.TransportError,
    ))


def build_service(
    settings: Settings,
    *,
    config_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    notifier: Notifier | None = None,
    tracer: Tracer | None = None,
    stop_grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS,
    fast_seconds: float | None = None,
    jobs: JobsFactory | None = None,
    on_settings: Callable[[Settings], None] | None = None,
) -> Service:
    """The Service with the real orchestrator, wallet and publishers, or the jobs `jobs(settings, journal, budget)` makes."""
    environ = os.environ if environ is None else environ
    state = open_state(settings)  # every room's tables at head; several instances may start at once
    engine, journal, budget = state.engine, state.journal, state.budget
    jobs = (jobs or real_jobs)(settings, journal, budget)
    loader = None
    if config_path is not None:
        def loader() -> Settings:
            return load_settings(config_path, dict(environ))
    return Service(
        settings,
        budget=budget,
        jobs=jobs,
        reader=StatusReader(journal, settings.persona, posts_source=_outbox_posts(journal),
                            posts_of_source=_outbox_posts_of(journal),
                            redactor=Redactor(secret_values(settings))),
        lock=CycleLock(engine, settings.persona, settings.state_dir),
        notifier=notifier or Notifier(environ),
        policy=error_policy(),
        config_loader=loader,
        tracer=tracer,
        stop_grace_seconds=stop_grace_seconds,
        fast_seconds=fast_seconds,
        on_settings=on_settings,
        site=_site(settings, engine),
    )


def _site(settings: Settings, engine: Engine) -> SiteServer | None:
    """The agent's own site when [site] enables it (starlette and uvicorn load only then)."""
    if not settings.site.enabled:
        return None
    from daemon.paid_reads import paid_reads_middleware
    from daemon.site import build_site

    return build_site(settings, engine, middleware=paid_reads_middleware(settings, engine))


def _outbox_posts(journal: Journal):  # noqa: ANN202
    """The status page's posts, from the publishers' outbox."""
    from daemon.status import outbox_posts
    from publishers.outbox import Outbox

    return outbox_posts(journal, Outbox(journal.engine))


def _outbox_posts_of(journal: Journal):  # noqa: ANN202
    """Each task's posts, from the publishers' outbox (the status page's cost per article): daemon.posts.posts_of."""
    from functools import partial

    from daemon.posts import posts_of
    from publishers.outbox import Outbox

    return partial(posts_of, Outbox(journal.engine))


def real_jobs(settings: Settings, journal: Journal, budget: Budget) -> Jobs:
    """Jobs from the real rooms: the wallet's earnings/settle/reconcile and the orchestrator's cycle."""
    from daemon.wiring_wallet import build_wallet  # deferred: web3 loads only when a service is built

    wallet = WalletSlot(journal, settings, build_wallet)
    slot = OrchestratorSlot(journal, settings, budget)

    async def on_reload(new: Settings) -> bool:
        rebuilt = await wallet.reload(new)
        return await slot.reload(new) and rebuilt

    return Jobs(cycle=slot.cycle, earnings=_earnings(slot, journal, wallet.scan), settle=wallet.settle,
                reconcile=wallet.reconcile, pause_reason=wallet.pause_reason, on_reload=on_reload)


class WalletSlot:
    """The wallet the jobs use (and a proxy to it), rebuilt from new [wallet] settings on SIGHUP.

    Thresholds, caps, the allowlist, the RPC endpoint and the keystore take effect at the
    next job without a restart. If the rebuild fails (a wrong chain id, a missing keystore
    password), the old wallet stays and the error is logged. The embedded chain is kept
    across a reload (rebuilding it would start a new chain with new balances).
    """

    def __init__(self, journal: Journal, settings: Settings, build: Callable[[Settings, Journal], AnyWallet]):
        self.journal = journal
        self._build = build
        self.spend = settings.x402.spend  # inference paid over x402, reconciled beside the balance
        self.current: AnyWallet = build(settings, journal)

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - everything else is the current wallet's
        if name == "current":
            raise AttributeError(name)
        return getattr(self.current, name)

    def scan(self) -> ScanResult:
        return self.current.scan()

    def settle(self) -> SettleReport:
        return self.current.settle()

    def reconcile(self) -> ReconcileResult | None:
        result = self.current.reconcile()
        self.reconcile_paid_inference()
        return result

    def reconcile_paid_inference(self) -> SpendReconcile | None:
        """Settle or void the x402 payments for inference (wallet/x402spend.py); None without a chain."""
        from wallet.wallets import ChainWallet
        from wallet.x402spend import reconcile_paid_inference

        wallet, spend = self.current, self.spend
        if not isinstance(wallet, ChainWallet) or spend.network is None:
            return None
        done = reconcile_paid_inference(
            self.journal, wallet.w3, spend.asset or wallet.token, network=spend.network,
            confirmations=wallet.settings.confirmations, max_timeout_seconds=spend.max_timeout_seconds)
        if done.statuses:
            log.info("x402 inference payments reconciled", extra={
                status: done.count(status) for status in ("confirmed", "unconfirmed", "pending", "void")})
        return done

    def is_too_stale(self) -> bool:
        return bool(self.current.is_too_stale())

    def pause_reason(self) -> str | None:
        """The wallet's reason to pause the loop (chain data too stale), or None: the gate's input."""
        return self.current.pause_reason()

    def _rebuild(self, settings: Settings) -> AnyWallet:
        from wallet.wallets import ChainWallet

        old = self.current
        if isinstance(old, ChainWallet) and old.mode == "embedded" and settings.wallet.mode == "embedded":
            return ChainWallet(old.w3, self.journal, settings.wallet, token=old.token, address=old.address,
                               signer=old.signer, mode="embedded", embedded=old.embedded)
        return self._build(settings, self.journal)

    async def reload(self, settings: Settings) -> bool:
        """Build a wallet on `settings` (in a thread) and swap it in; False keeps the old one."""
        self.spend = settings.x402.spend
        if settings.wallet == self.current.settings:
            return True
        try:
            fresh = await in_thread(self._rebuild, settings)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the running wallet
            log.error("wallet rebuild failed; keeping the previous wallet",
                      extra={"error": type(exc).__name__, "detail": str(exc)[:300]})
            return False
        self.current = fresh
        log.info("wallet rebuilt from the reloaded settings", extra={"mode": fresh.mode})
        return True


def _earnings(slot: OrchestratorSlot, journal: Journal,
              scan: Callable[[], ScanResult] | None) -> Callable[[], Awaitable[None]]:
    """Tips from the chain, then engagement from the platforms (whatever of the two is wired)."""
    from daemon.engagement import pull_engagement

    async def earnings() -> None:
        if scan is not None:
            await call_job(scan)
        async with slot.use() as runtime:
            channel = runtime.deps.channel
            outbox = getattr(channel, "outbox", None)
            if channel is not None and outbox is not None and callable(getattr(channel, "metrics", None)):
                await pull_engagement(channel, outbox, journal, runtime.deps.settings.wallet.engagement,
                                      datetime.now(timezone.utc))

    return earnings


class OrchestratorSlot:
    """The orchestrator the jobs use, rebuilt from new settings on SIGHUP.

    A rebuilt orchestrator gets fresh clients, channel and budget; the old one is
    closed once no job uses it any more (a cycle in flight finishes on it).
    If the rebuild fails, the old orchestrator stays.
    """

    def __init__(self, journal: Journal, settings: Settings, budget: Budget):
        self.journal = journal
        self.current = self._build(settings, budget)
        self._users: dict[int, int] = {}
        atexit.register(self._close_at_exit)

    def _build(self, settings: Settings, budget: Budget | None = None) -> AgentsRuntime:
        from agents.orchestrator import Orchestrator, cycle_worker
        from daemon.wiring_agents import AgentsRuntime, _close_sync, build_deps

        budget = budget or Budget(self.journal, settings.budget, persona=settings.persona)
        closers: list[Callable[[], Any]] = []
        try:
            deps = build_deps(settings, self.journal, budget, closers=closers)
        except BaseException:
            _close_sync(closers)
            raise
        # Stable across restarts: the next start takes back the tasks a killed daemon had claimed
        # (Orchestrator.run_cycle releases this worker's claims under the persona's cycle lock).
        deps.worker = cycle_worker(settings.persona)
        return AgentsRuntime(Orchestrator(deps), deps, closers)

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[AgentsRuntime]:
        """The current runtime, held (not closed by a reload) until the block ends."""
        runtime = self.current
        key = id(runtime)
        self._users[key] = self._users.get(key, 0) + 1
        try:
            yield runtime
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                if runtime is not self.current:
                    await self._close(runtime)

    async def cycle(self, ctx: CycleContext) -> CycleReport:
        """The orchestrator's run_cycle as the cycle job, with the job's own cycle context."""
        async with self.use() as runtime:
            try:
                return await runtime.orchestrator.run_cycle(ctx)
            finally:
                trim_heap()  # what the cycle freed goes back to the OS (daemon/memory.py says why)

    async def reload(self, settings: Settings) -> bool:
        """Build an orchestrator on `settings` (in a thread) and swap it in; False keeps the old one."""
        try:
            fresh = await in_thread(self._build, settings)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the running orchestrator
            log.error("orchestrator rebuild failed; keeping the previous one",
                      extra={"error": type(exc).__name__, "detail": str(exc)[:300]})
            return False
        old, self.current = self.current, fresh
        log.info("orchestrator rebuilt from the reloaded settings")
        if id(old) not in self._users:
            await self._close(old)
        return True

    async def _close(self, runtime: AgentsRuntime) -> None:
        try:
            await runtime.aclose()
        except Exception:  # noqa: BLE001 - a failed close must not stop the service
            log.warning("closing the previous orchestrator's clients failed", exc_info=True)

    def _close_at_exit(self) -> None:
        from daemon.wiring_agents import _close_sync

        _close_sync(self.current.closers)
        self.current.closers.clear()


def wallet_pause_reason(settings: Settings, journal: Journal) -> Callable[[], str | None]:
    """The wallet's pause reason for a gate outside the daemon (`selfpub cycle`): the same answer the daemon's gate gets.

    Staleness is read from the database (wallet_sync), which the daemon's wallet keeps, so a
    wallet built here agrees with the daemon's. The ledger wallet never pauses: nothing is built.
    """
    if settings.wallet.mode == "ledger":
        return lambda: None
    from daemon.wiring_wallet import build_wallet

    wallet = build_wallet(settings, journal)
    return wallet.pause_reason
