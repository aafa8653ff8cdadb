"""`selfpub demo`: the whole loop offline, on the embedded model, chain and sample feed.

Funds the agent on the embedded chain, runs cycles until the balance falls
under min_balance and the loop pauses, tips the agent on chain, shows the
loop resume, then prints the ledger report and writes the chart.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console

from agents.sample import sample_feed_bytes
from config import format_credits, load_settings
from config.db import make_engine
from config.settings import Settings
from ledger import Budget, Journal
from ledger.plot import render as render_chart
from ledger.reports import build_report, render_table

# Demo prices are high on purpose so a few cycles move the balance visibly.
DEMO_PRICE = {"input_per_million": "20", "output_per_million": "60", "provider": "embedded"}
FUND = "0.5"  # opening credits minted to the agent
TIP = "0.60"  # the tip that brings the loop back
MAX_CYCLES_BEFORE_TIP = 6


@dataclass
class DemoResult:
    """What the demo did, for the final summary and for tests."""

    cycles: list[str] = field(default_factory=list)
    paused_reason: str = ""
    resumed: bool = False
    published: int = 0
    report_json: dict = field(default_factory=dict)
    chart: Path | None = None
    outbox: Path | None = None


class _SampleSite(BaseHTTPRequestHandler):
    """Serves the sample feed and a small page per article, on 127.0.0.1."""

    feed: bytes = b""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/feed.xml"):
            body, ctype = self.feed, "application/rss+xml"
        elif self.path.startswith("/articles/"):
            title = self.path.rsplit("/", 1)[-1].replace("-", " ")
            body = f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>" \
                   f"<p>{title}: notes from the sample site.</p></article></body></html>".encode()
            ctype = "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # quiet
        return


@contextmanager
def sample_site() -> Iterator[str]:
    """Serve the bundled sample feed on a free 127.0.0.1 port; yields the feed URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SampleSite)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    handler = type("SampleSite", (_SampleSite,), {"feed": sample_feed_bytes(base)})
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{base}/feed.xml"
    finally:
        server.shutdown()
        server.server_close()


def demo_settings(workdir: Path, feed_url: str, payee: str | None = None) -> Settings:
    """Settings of the demo: embedded model and chain, local outbox, small budget."""
    small = {"model": "smollm2-135m-instruct", "base_url": "embedded", "max_calls_per_cycle": 6,
             "timeout_seconds": 300, "max_retries": 1}
    data = {
        "persona": "demo",
        "state_dir": str(workdir / "state"),
        "budget": {"min_balance": "0.35", "resume_balance": "0.6", "daily_cap": "5", "per_cycle_cap": "0.5"},
        "prices": {"smollm2-135m-instruct": DEMO_PRICE},
        "agents": {
            "orchestrator": {**small, "max_tokens": 128},
            "research": {**small, "max_tokens": 256},
            "writer": {**small, "max_tokens": 400},
            "critic": {**small, "max_tokens": 160},
        },
        "feeds": [{"url": feed_url, "name": "sample", "tags": ["python"]}],
        "research": {"items_per_cycle": 1},
        "review": {"max_revisions": 1, "min_score": 0},
        "wallet": {"mode": "embedded", "confirmations": 0, "settle_threshold": "0.1"},
        "http": {"enabled": False},
    }
    if payee:
        data["wallet"] |= {"allowlist": [payee], "providers": {"embedded": payee}}
    return load_settings(data=data, environ={})


async def run_demo(workdir: Path, console: Console | None = None) -> DemoResult:
    """Run the demo in `workdir`; returns what happened."""
    from daemon.wiring_agents import build_deps
    from agents.orchestrator import Orchestrator
    from wallet.wallets import ChainWallet
    from daemon.wiring_wallet import build_wallet

    console = console or Console()
    result = DemoResult()
    workdir.mkdir(parents=True, exist_ok=True)
    with sample_site() as feed_url:
        settings = demo_settings(workdir, feed_url)
        settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = make_engine(settings.database_url)
        journal = Journal(engine)
        journal.migrate()
        budget = Budget(journal, settings.budget, persona=settings.persona)

        step = console.status("starting the embedded chain and deploying the credit token")
        with step:
            chain = build_wallet(settings, journal).embedded
            payee = chain.others[0]
            settings = demo_settings(workdir, feed_url, payee)
            wallet = ChainWallet(chain.w3, journal, settings.wallet, token=chain.token_address, address=chain.agent,
                                 signer=chain.agent_signer, mode="embedded", embedded=chain)
            chain.fund_agent(_ucr(FUND))
            wallet.scan()
        console.print(f"[green]chain[/] token {chain.token_address}; agent {chain.agent} funded with {FUND} credits")

        closers: list = []
        with console.status("starting the embedded model (SmolLM2-135M) and wiring the agents"):
            deps = build_deps(settings, journal, budget, closers=closers)
            orchestrator = Orchestrator(deps)
        try:
            await _cycles_until_pause(orchestrator, budget, wallet, console, result)
            console.rule("[bold]tip arrives")
            chain.tip(_ucr(TIP))
            wallet.scan()
            state = budget.evaluate(extra_reason=wallet.pause_reason())
            result.resumed = not state.paused
            console.print(f"tipped {TIP} credits on chain -> available {format_credits(budget.available())}; "
                          f"{'[green]RESUMED[/]' if result.resumed else '[red]still paused: ' + state.reason + '[/]'}")
            if result.resumed:
                await _one_cycle(orchestrator, console, result)
            with console.status("settling what the agent owes its compute provider, on chain"):
                settled = wallet.settle()
            for p in settled.paid:
                console.print(f"[green]settled[/] {format_credits(p.amount_ucr)} credits to {p.provider} (tx {p.tx_hash})")
            for r in settled.refused:
                console.print(f"[yellow]settlement refused[/]: {r}")
        finally:
            for close in reversed(closers):
                outcome = close()
                if asyncio.iscoroutine(outcome):
                    await outcome

        console.rule("[bold]selfpub ledger report")
        report = build_report(journal, budget)
        render_table(report, console)
        result.report_json = report.to_dict()
        result.chart = render_chart(journal, workdir / "ledger.png")
        result.outbox = settings.state_dir / "outbox"
        console.print(f"chart: {result.chart}\nposts written to: {result.outbox}\nstate: {settings.state_dir}")
        engine.dispose()
    return result


async def _cycles_until_pause(orchestrator, budget: Budget, wallet, console: Console, result: DemoResult) -> None:  # noqa: ANN001
    for _ in range(MAX_CYCLES_BEFORE_TIP):
        state = budget.evaluate(extra_reason=wallet.pause_reason())
        if state.paused:
            result.paused_reason = state.reason
            console.print(f"[yellow]PAUSED[/]: {state.reason}")
            return
        await _one_cycle(orchestrator, console, result)
    state = budget.evaluate(extra_reason=wallet.pause_reason())
    result.paused_reason = state.reason if state.paused else ""


async def _one_cycle(orchestrator, console: Console, result: DemoResult) -> None:  # noqa: ANN001
    n = len(result.cycles) + 1
    with console.status(f"cycle {n}: research -> write -> critique -> publish on the embedded model"):
        report = await orchestrator.run_cycle()
    result.cycles.append(report.summary())
    result.published += report.published
    console.print(f"[bold]cycle {n}[/] {report.summary()}; available {format_credits(orchestrator.deps.budget.available())}")
    if not report.planned and not report.resumed:
        for why in report.explanations[:3]:
            console.print(f"  [dim]{why}[/]")
    for err in report.errors[:3]:
        console.print(f"  [red]error[/] {err}")


def _ucr(credits: str) -> int:
    from config import parse_credits

    return parse_credits(credits)
