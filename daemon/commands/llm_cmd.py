"""`selfpub llm ...`: serve the embedded model, show the call log."""

from __future__ import annotations

import signal
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from kernel.money import format_credits
from daemon.context import app_context

console = Console()
llm_app = typer.Typer(help="The language models: the embedded server and the call log.", no_args_is_help=True)


@llm_app.command("serve")
def serve(
    port: int = typer.Option(8080, "--port", help="Port on 127.0.0.1 (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Listen address."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for the model."),  # noqa: UP007
) -> None:
    """Serve the embedded SmolLM2 model (OpenAI-compatible) in the foreground until Ctrl-C or SIGTERM."""
    from agents.llm.embedded import EmbeddedError, EmbeddedServer  # pulls in openai: imported only when serving

    server = EmbeddedServer(host=host, port=port, n_threads=threads)

    def _stop(_signo: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.start()
        console.print(f"serving {server.alias} at {server.base_url} (pid {server.pid}); Ctrl-C to stop")
        code = server.wait()
        console.print(f"[red]the model server exited with code {code}[/]")
        raise typer.Exit(1)
    except EmbeddedError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        server.stop()


CALL_COLUMNS = ("time", "role", "model", "tokens in/out", "cost", "ms", "outcome", "task")
FLEXIBLE = ("model", "task")  # cut with an ellipsis to fit the terminal; every other cell is shown whole
MIN_FLEX = 6


def calls_table(rows: list, width: int) -> Table:  # rows: [CallRecord]
    """The call log as a table no wider than `width`: one line per call, figures never cut."""
    cells = [
        (
            f"{r.time:%m-%d %H:%M}" if r.time else "", r.role, r.model, f"{r.input_tokens}/{r.output_tokens}",
            format_credits(r.cost), str(r.latency_ms), r.outcome, r.task_id or "",
        )
        for r in rows
    ]
    widths = [max([len(name), *(len(c[i]) for c in cells)]) for i, name in enumerate(CALL_COLUMNS)]
    gaps = len(CALL_COLUMNS) - 1  # one space after every column but the last
    fixed = sum(w for name, w in zip(CALL_COLUMNS, widths) if name not in FLEXIBLE)
    room = max(width - fixed - gaps, MIN_FLEX * len(FLEXIBLE))
    flex = {name: widths[CALL_COLUMNS.index(name)] for name in FLEXIBLE}
    while sum(flex.values()) > room:  # shrink the widest flexible column first
        widest = max(flex, key=lambda n: flex[n])
        flex[widest] -= 1
    table = Table(box=None, padding=(0, 1, 0, 0), show_edge=False, pad_edge=False, header_style="bold")
    for name, w in zip(CALL_COLUMNS, widths):
        numeric = name in ("tokens in/out", "cost", "ms")
        table.add_column(name, justify="right" if numeric else "left", no_wrap=True, overflow="ellipsis",
                         width=flex.get(name, w))
    for c in cells:
        table.add_row(*c)
    return table


@llm_app.command("calls")
def calls(
    ctx: typer.Context,
    cycle: Optional[str] = typer.Option(None, "--cycle", help="Only this cycle id."),  # noqa: UP007
    limit: int = typer.Option(50, "--limit", help="Show the last N rows."),
) -> None:
    """List logged LLM calls with tokens, cost and outcome (fits the terminal's width; 80 columns at least)."""
    from agents.llm.calllog import CallLog

    log = CallLog(app_context(ctx).read_only().engine)  # needs no LLM key
    rows = log.calls(cycle_id=cycle)[-limit:]
    out = Console()  # sized now: the terminal (or $COLUMNS) this command runs in
    out.print(calls_table(rows, out.width))
    failed = [r for r in rows if r.error_class]
    if failed:
        out.print(f"{len(failed)} with an error: " + ", ".join(sorted({r.error_class for r in failed})))
    t = log.totals(cycle_id=cycle)
    out.print(f"{t.calls} calls, {t.input_tokens} in / {t.output_tokens} out tokens, {format_credits(t.cost)} credits")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(llm_app, name="llm")
