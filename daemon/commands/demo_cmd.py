"""`selfpub demo`: a whole offline run on the embedded defaults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def demo(
    directory: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--dir", help="Where the demo keeps its state (default: ./selfpub-demo, wiped first)."
    ),
    pds_dir: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--pds-dir", help="Where the local Bluesky PDS peer is installed (default: build/node/pds, `make peers`)."
    ),
    bluesky: bool = typer.Option(True, "--bluesky/--no-bluesky", help="Also post to a local PDS when one is installed."),
) -> None:
    """Fund the agent on the embedded chain, run cycles until it pauses, tip it, watch it resume."""
    import shutil

    from daemon.demo import run_demo

    workdir = (directory or Path("selfpub-demo")).resolve()
    for old in ("state", "pds"):
        if (workdir / old).exists():
            shutil.rmtree(workdir / old)
    console = Console()
    result = asyncio.run(run_demo(workdir, console, pds_dir=pds_dir, bluesky=bluesky))
    ok = bool(result.cycles) and bool(result.paused_reason) and result.resumed
    console.print("[bold green]demo finished[/]" if ok else "[bold red]demo did not show pause and resume[/]")
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command("demo")(demo)
