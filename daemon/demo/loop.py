"""`selfpub demo`: the whole loop offline, on the embedded model, chain and sample feed.

Funds the agent on the embedded chain, puts the embedded model behind the x402 SDK's payment middleware
(daemon/demo/inference.py: every model call paid per call from the wallet, booked as
expenses:compute:<agent>), runs cycles until the balance falls
under min_balance and the loop pauses, tips the agent on chain, shows the
loop resume, lets a machine reader buy each published article over x402
(daemon/demo/reader.py: the site behind the paywall, the SDK's client and
facilitator on the embedded chain; the reads booked as income:reads), then
prints the ledger report (paid reads on: reads and the break-even) and writes the chart. The sustain
tier in force is printed at the start, after the pause and after the reads. Every cycle
goes through the daemon's door (daemon.cycle: the gate with the wallet's pause
reason, then the persona's cycle lock), so the demo pauses and resumes exactly
as the daemon would. When the
Node peer is installed (build/node/pds, `make peers`), posts also go to a
local Bluesky PDS on 127.0.0.1; otherwise the demo says Bluesky is skipped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from rich.console import Console

from agents.cycle import CycleContext, Gate
from agents.sample import sample_feed_bytes
from config import load_settings
from kernel.money import format_credits
from config.settings import Settings
from ledger import Budget, Journal
from ledger.accounts import COMPUTE, READS, WALLET
from ledger.plot import render as render_chart
from ledger.reports import build_report, render_table
from ledger.sustain import sustain_state
from daemon.cycle import run_admitted
from daemon.demo.inference import PAID_CALL, PaidInference
from daemon.demo.localpds import DEFAULT_PDS_DIR, LocalPds, PdsError, find_pds, start_pds
from daemon.lock import CycleLock
from daemon.state import open_state

# Demo prices are high on purpose so a few cycles move the balance visibly.
DEMO_PRICE = {"input_per_million": "20", "output_per_million": "60", "provider": "embedded"}
FUND = "0.58"  # opening credits minted to the agent: calls paid at PAID_CALL (a cycle ~0.014), 3 cycles or so to the pause
TIP = "0.60"  # the tip that brings the loop back
# The pause threshold is at least the worst case of one item (research, then write and review twice: 0.522560
# credits at DEMO_PRICE and these max_tokens), so above it a cycle always fits an item and below it the gate
# pauses: a balance between the two would let cycles run that plan nothing, neither working nor paused (seen
# with min_balance 0.35: a first cycle of 0.14 left 0.36, under that worst case, and five cycles planned nothing).
MIN_BALANCE = "0.55"
MAX_CYCLES_BEFORE_TIP = 6
MAX_CYCLES_AFTER_TIP = 5  # after the resume, cycles until a draft is published (the gate may reject some)
BSKY_HANDLE = "selfpub-demo.test"  # "demo.test" is a reserved handle
BSKY_PASSWORD_FILE = "bluesky.app-password"  # in the state dir, mode 0600


@dataclass
class DemoResult:
    """What the demo did, for the final summary and for tests."""

    cycles: list[str] = field(default_factory=list)
    paused_reason: str = ""
    resumed: bool = False
    published: int = 0
    rejected: list[str] = field(default_factory=list)  # one line per draft the gate refused: title, cost, reasons
    report_json: dict = field(default_factory=dict)
    chart: Path | None = None
    outbox: Path | None = None
    bluesky_skipped: str = ""  # why Bluesky was not used ("" when it was)
    bluesky_uris: list[str] = field(default_factory=list)  # at:// URIs of the posts on the local PDS
    pds: LocalPds | None = None  # the local PDS (still running only with keep_pds=True)
    pds_did: str = ""
    reads_paid: int = 0  # reads a machine reader bought over x402 (daemon/demo/reader.py)
    reads_income: int = 0  # ucr they booked as income:reads
    inference_calls: int = 0  # model calls paid over x402 (daemon/demo/inference.py)
    inference_paid: int = 0  # ucr they cost, booked as expenses:compute:<agent> against the wallet
    tiers: list[tuple[str, str]] = field(default_factory=list)  # (moment, sustain tier): start, after the pause, after the reads


@dataclass
class DemoBluesky:
    """The demo's Bluesky account on a local PDS: settings to merge and the running PDS."""

    pds: LocalPds
    did: str
    publishers: dict


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


def demo_settings(workdir: Path, feed_url: str, payee: str | None = None, publishers: dict | None = None,  # noqa: PLR0913
                  reads: dict | None = None, paid: dict | None = None) -> Settings:
    """Settings of the demo: embedded model and chain, local outbox (+ a local PDS), small budget.

    reads: [x402] network, asset and pay_to on the embedded chain, once it runs: paid reads are then on.
    paid: the wallet's keystore and [x402.spend] (daemon/demo/inference.py): inference is then paid per call.
    """
    small = {"model": "smollm2-135m-instruct", "base_url": "embedded", "max_calls_per_cycle": 6,
             "timeout_seconds": 300, "max_retries": 1}
    data = {
        "persona": "demo",
        "state_dir": str(workdir / "state"),
        "budget": {"min_balance": MIN_BALANCE, "resume_balance": "0.6", "daily_cap": "5", "per_cycle_cap": "0.6"},
        "prices": {"smollm2-135m-instruct": DEMO_PRICE},
        "agents": {
            "orchestrator": {**small, "max_tokens": 128},
            "research": {**small, "max_tokens": 256},
            # Room for the sections grammar's longest reply (3 paragraphs, agents/sections.py) even at one character
            # a token: at 1200 a degenerate reply of digits and dates ("3:12am, 2022-08-29, ...") was cut off, not
            # JSON, and so was its repair; the task failed on every attempt (temperature 0: the same reply).
            "writer": {**small, "max_tokens": 2400},
            "critic": {**small, "max_tokens": 160},
        },
        "feeds": [{"url": feed_url, "name": "sample", "tags": ["python"]}],
        "research": {"items_per_cycle": 1},
        "review": {"max_revisions": 1},  # the real gate: review.min_score and the quality floor as configured
        "wallet": {"mode": "embedded", "confirmations": 0, "settle_threshold": "0.1"},
        "http": {"enabled": False},
    }
    if payee:
        data["wallet"] |= {"allowlist": [payee], "providers": {"embedded": payee}}
    if publishers:
        data["publishers"] = publishers
    if paid:
        data["wallet"] |= paid["wallet"]
        data["x402"] = {"spend": paid["spend"]}
    settings = load_settings(data=data, environ={})
    if reads:
        # The loader admits [x402] only on an "evm" wallet with a facilitator key of its own (`selfpub run`); the
        # demo's facilitator is the x402 SDK's on the embedded chain, signing with a dev account (reader.py), so
        # paid reads are turned on here, with the chain's terms: the report then shows reads and the break-even.
        settings = settings.model_copy(update={"x402": settings.x402.model_copy(update={"enabled": True, **reads})})
    return settings


def start_bluesky(pds_dir: Path | None, workdir: Path, state_dir: Path, console: Console) -> DemoBluesky | str:
    """Start the local PDS and create the demo account; a reason string when Bluesky is skipped."""
    directory = find_pds(pds_dir)
    if directory is None:
        where = pds_dir or DEFAULT_PDS_DIR
        return (f"the local Bluesky PDS (Node peer) is not installed in {where}; "
                "run `make peers` in the source tree to add it, or pass --pds-dir")
    with console.status(f"starting a local Bluesky PDS from {directory}"):
        try:
            pds = start_pds(directory, workdir / "pds")
        except PdsError as exc:
            return f"the local Bluesky PDS did not start: {exc}"
        password = secrets.token_urlsafe(18)
        try:
            account = pds.create_account(BSKY_HANDLE, password)
        except httpx.HTTPError as exc:
            pds.stop()
            return f"the local Bluesky PDS refused the demo account: {type(exc).__name__} {_status(exc)}"
        except BaseException:
            pds.stop()
            raise
    secret = state_dir / BSKY_PASSWORD_FILE
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    os.chmod(secret, 0o600)
    publishers = {"bluesky": {"enabled": True, "base_url": pds.url, "handle": account.handle,
                              "app_password": {"file": str(secret)}},
                  "local": {"enabled": True}}
    return DemoBluesky(pds, account.did, publishers)


async def run_demo(workdir: Path, console: Console | None = None, *, pds_dir: Path | None = None,
                   bluesky: bool = True, keep_pds: bool = False) -> DemoResult:
    """Run the demo in `workdir`; returns what happened.

    pds_dir: where the Node PDS peer is installed (default build/node/pds); bluesky=False skips it;
    keep_pds leaves the PDS running in result.pds (the caller stops it).
    """
    console = console or Console()
    result = DemoResult()
    workdir.mkdir(parents=True, exist_ok=True)
    with sample_site() as feed_url:
        settings = demo_settings(workdir, feed_url)
        state = open_state(settings)  # as `selfpub run` opens it: every room's tables at head
        engine, journal, budget = state.engine, state.journal, state.budget

        peer = start_bluesky(pds_dir, workdir, settings.state_dir, console) if bluesky else "turned off (--no-bluesky)"
        if isinstance(peer, DemoBluesky):
            result.pds, result.pds_did = peer.pds, peer.did
            console.print(f"[green]bluesky[/] local PDS {peer.pds.url}; account {BSKY_HANDLE} ({peer.did})")
        else:
            result.bluesky_skipped = peer
            console.print(f"[yellow]bluesky skipped[/]: {peer}; posts go to the local outbox only")
        try:
            await _run(workdir, feed_url, settings, journal, budget, peer, console, result)
        except BaseException:
            if result.pds is not None:  # never leave the PDS behind on a failure
                result.pds.stop()
            raise
        if result.pds is not None and not keep_pds:
            result.pds.stop()
        engine.dispose()
    return result


async def _run(workdir: Path, feed_url: str, settings: Settings, journal: Journal, budget: Budget,  # noqa: PLR0913
               peer: DemoBluesky | str, console: Console, result: DemoResult) -> None:
    from daemon.wiring_agents import build_deps
    from agents.orchestrator import Orchestrator, cycle_worker
    from wallet.wallets import ChainWallet
    from daemon.wiring_wallet import build_wallet

    publishers = peer.publishers if isinstance(peer, DemoBluesky) else None
    with console.status("starting the embedded chain and deploying the credit token"):
        chain = build_wallet(settings, journal).embedded
        payee = chain.others[0]
        reads = {"network": f"eip155:{chain.chain_id}", "asset": chain.token_address, "pay_to": chain.agent}
        paid = PaidInference(chain, settings.state_dir)
        settings = demo_settings(workdir, feed_url, payee, publishers, reads, paid.settings())
        wallet = ChainWallet(chain.w3, journal, settings.wallet, token=chain.token_address, address=chain.agent,
                             signer=chain.agent_signer, mode="embedded", embedded=chain)
        chain.fund_agent(_ucr(FUND))
        wallet.scan()
    console.print(f"[green]chain[/] token {chain.token_address}; agent {chain.agent} funded with {FUND} credits")
    console.print(f"[green]paid inference[/]: the embedded model answers behind the x402 SDK's payment middleware "
                  f"on 127.0.0.1; each call pays {format_credits(PAID_CALL)} credits (exact, at or under the call's "
                  f"reservation) to the provider {paid.payee}, settled by the SDK's facilitator on the embedded "
                  "chain; \\[x402.spend] pins the payee, network, token and a daily cap of "
                  f"{settings.x402.spend.daily_cap // 1_000_000} credits", highlight=False)

    closers: list = []
    with console.status("starting the embedded model (SmolLM2-135M) and wiring the agents"):
        deps = build_deps(settings, journal, budget, closers=closers, front_embedded=paid.front)
        closers.append(paid.close)
        deps.worker = cycle_worker(settings.persona)
        orchestrator = Orchestrator(deps)
    door = Door(Gate(budget, wallet.pause_reason), CycleLock(journal.engine, settings.persona, settings.state_dir))
    try:
        _tier("at the start", journal, budget, settings, console, result)
        await _cycles_until_pause(orchestrator, door, console, result)
        _tier("after the pause", journal, budget, settings, console, result)
        console.rule("[bold]tip arrives")
        chain.tip(_ucr(TIP))
        wallet.scan()
        console.print(f"tipped {TIP} credits on chain -> available {format_credits(budget.available())}")
        result.resumed = await _one_cycle(orchestrator, door, console, result)
        console.print("[green]RESUMED[/]: the gate let the cycle above run" if result.resumed
                      else f"[red]still paused: {door.last_reason}[/]")
        for _ in range(MAX_CYCLES_AFTER_TIP - 1):  # funded again: it works on until a post is out
            if not result.resumed or result.published or not await _one_cycle(orchestrator, door, console, result):
                break
        _paid_calls(paid, journal, console, result)
        with console.status("settling what the agent owes its compute provider, on chain"):
            settled = wallet.settle()
        for p in settled.paid:
            console.print(f"[green]settled[/] {format_credits(p.amount_ucr)} credits to {p.provider} (tx {p.tx_hash})")
        for r in settled.refused:
            console.print(f"[yellow]settlement refused[/]: {r}")
        await _sell_reads(settings, journal, budget, chain, wallet, console, result)
        _tier("after the reads", journal, budget, settings, console, result)
    finally:
        for close in reversed(closers):
            outcome = close()
            if asyncio.iscoroutine(outcome):
                await outcome

    console.rule("[bold]selfpub ledger report")
    from daemon.posts import posts_of
    from publishers.outbox import Outbox

    # the tier in force and why; each task's posts for the P&L's post column
    report = build_report(journal, budget, sustain=settings.sustain, posts_of=posts_of(Outbox(journal.engine)),
                          read_price=settings.x402.price_article if settings.x402.enabled else None)
    render_table(report, console)
    console.print("sustain tier across the demo: " + " -> ".join(f"{tier} ({when})" for when, tier in result.tiers))
    result.report_json = report.to_dict()
    result.chart = render_chart(journal, workdir / "ledger.png", budget=settings.budget)  # marks the pause, tip, resume
    result.outbox = settings.state_dir / "outbox"
    if isinstance(peer, DemoBluesky):
        result.bluesky_uris = [r.published.remote_id for r in Outbox(journal.engine).published("bluesky")
                               if r.published is not None]
    console.print(f"drafts: {result.published} published, {len(result.rejected)} rejected by the critic's gate "
                  f"(review.min_score {settings.review.min_score} and the quality floor; reasons above)")
    console.print(f"chart: {result.chart}\nposts written to: {result.outbox}\nstate: {settings.state_dir}")
    if isinstance(peer, DemoBluesky):
        console.print(f"bluesky posts on the local PDS {peer.pds.url} ({len(result.bluesky_uris)}):")
        for uri in result.bluesky_uris:
            console.print(f"  {uri}")
    else:
        console.print(f"bluesky: skipped ({result.bluesky_skipped})")


async def _sell_reads(settings: Settings, journal: Journal, budget: Budget, chain, wallet,  # noqa: ANN001, PLR0913
                      console: Console, result: DemoResult) -> None:
    """A machine reader buys each published article over x402; the wallet books the reads as income."""
    from daemon.demo.reader import sell_reads

    console.rule("[bold]a machine reader pays per read (x402)")
    with console.status("reading /a/<slug>.md and /api/briefs/<slug>: 402, pay with the x402 SDK, 200"):
        sold = await sell_reads(settings, journal.engine, chain, wallet)
    for path, status in sold.requests:
        console.print(f"  {path} -> {status}", highlight=False)
    result.reads_paid, result.reads_income = sold.paid, sold.booked_ucr
    console.print(f"[green]paid reads[/] {sold.paid}; {format_credits(sold.booked_ucr)} credits booked as "
                  f"{READS} -> available {format_credits(budget.available())}")


def _paid_calls(paid: PaidInference, journal: Journal, console: Console, result: DemoResult) -> None:
    """Print the inference calls paid over x402: how many, what they cost, and how they were booked."""
    calls = paid.calls(journal)
    result.inference_calls, result.inference_paid = len(calls), sum(c.amount for c in calls)
    settled = sum(1 for c in calls if c.tx_hash)
    console.print(f"[green]paid inference calls[/] {len(calls)} ({settled} settled on chain), "
                  f"{format_credits(result.inference_paid)} credits booked as {COMPUTE}:<agent> against {WALLET} "
                  "(paid, nothing owed to the provider)", highlight=False)
    for c in calls[-3:]:
        console.print(f"  {c.key} {format_credits(c.amount)} credits tx {c.tx_hash}", highlight=False)


def _tier(when: str, journal: Journal, budget: Budget, settings: Settings, console: Console,  # noqa: PLR0913
          result: DemoResult) -> None:
    """Print the sustain tier in force now (ledger/sustain.py: income / cost over its window) and keep it."""
    state = sustain_state(journal, settings.sustain, now=budget.clock())
    result.tiers.append((when, state.tier))
    console.print(f"[bold]sustain tier {when}[/]: {state.reason}", highlight=False)


@dataclass
class Door:
    """The demo's way into a cycle: the gate and the persona's cycle lock (daemon.cycle)."""

    gate: Gate
    lock: CycleLock
    last_reason: str = ""


async def _cycles_until_pause(orchestrator, door: Door, console: Console, result: DemoResult) -> None:  # noqa: ANN001
    for _ in range(MAX_CYCLES_BEFORE_TIP):
        if not await _one_cycle(orchestrator, door, console, result):
            result.paused_reason = door.last_reason
            console.print(f"[yellow]PAUSED[/]: {door.last_reason}")
            return
    state = door.gate.check()
    result.paused_reason = state.reason if state.paused else ""


async def _one_cycle(orchestrator, door: Door, console: Console, result: DemoResult) -> bool:  # noqa: ANN001
    """One cycle through the door; False (and the reason in door.last_reason) when it was refused."""
    n = len(result.cycles) + 1
    with console.status(f"cycle {n}: research -> write -> critique -> publish on the embedded model"):
        done = await run_admitted(door.gate, door.lock, orchestrator.run_cycle, CycleContext.start())
    if not done.admission.admitted:
        door.last_reason = done.admission.reason
        return False
    report = done.result
    result.cycles.append(report.summary())
    result.published += report.published
    console.print(f"[bold]cycle {n}[/] {report.summary()}; available {format_credits(orchestrator.deps.budget.available())}")
    if not report.planned and not report.resumed:
        for why in report.explanations[:3]:
            console.print(f"  [dim]{why}[/]")
    for err in report.errors[:3]:
        console.print(f"  [red]error[/] {err}")
    for line in _rejections(orchestrator.deps.tasks, report.tasks):
        result.rejected.append(line)
        console.print(f"  [yellow]rejected[/] {line}", highlight=False)
    return True


def _rejections(tasks, task_ids: list[str]) -> list[str]:  # noqa: ANN001
    """A line per task of the cycle the gate rejected: its draft's title, what it cost, the critic's reasons."""
    from agents.tasks import REJECTED

    out = []
    for task in (tasks.get(t) for t in task_ids):
        if task.status != REJECTED:
            continue
        review = task.messages.reviews[-1] if task.messages.reviews else None
        reasons = "; ".join(review.problems[:4]) if review else (task.reasons[-1] if task.reasons else "")
        title = task.messages.draft.title if task.messages.draft else task.item_url
        out.append(f"{title!r} cost {format_credits(task.cost)} credits: {reasons}")
    return out


def _status(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.status_code) if response is not None else ""


def _ucr(credits: str) -> int:
    from kernel.money import parse_credits

    return parse_credits(credits)
