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


@llm_app.command("calls")
def calls(
    ctx: typer.Context,
    cycle: Optional[str] = typer.Option(None, "--cycle", help="Only this cycle id."),  # noqa: UP007
    limit: int = typer.Option(50, "--limit", help="Show the last N rows."),
) -> None:
    """List logged LLM calls with tokens, cost and outcome."""
    from agents.llm.calllog import CallLog

    log = CallLog(app_context(ctx).engine)
    rows = log.calls(cycle_id=cycle)[-limit:]
    table = Table("time", "role", "model", "in", "out", "cost", "ms", "outcome", "task")
    for r in rows:
        table.add_row(
            f"{r.time:%Y-%m-%d %H:%M:%S}" if r.time else "", r.role, r.model, str(r.input_tokens), str(r.output_tokens),
            format_credits(r.cost), str(r.latency_ms), r.outcome + (f" ({r.error_class})" if r.error_class else ""), r.task_id or "",
        )
    console.print(table)
    t = log.totals(cycle_id=cycle)
    console.print(f"{t.calls} calls, {t.input_tokens} in / {t.output_tokens} out tokens, {format_credits(t.cost)} credits")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(llm_app, name="llm")
