"""`selfpub demo`: a whole offline run on the embedded defaults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


MARKER = ".selfpub-demo"  # written into a directory the demo made: only such a directory is ever wiped
WIPED = ("state", "pds")


class DirectoryNotOurs(Exception):
    """--dir points at a directory the demo did not create, holding what the demo would wipe."""

    retryable: bool | None = False  # the user's choice of directory: said once, never retried


def fresh_workdir(workdir: Path) -> None:
    """Make `workdir` ready for a new demo run; wipe the last run's state only in a directory the demo made."""
    import shutil

    ours = (workdir / MARKER).is_file()
    leftovers = [workdir / name for name in WIPED if (workdir / name).exists()]
    if leftovers and not ours:
        raise DirectoryNotOurs(
            f"{workdir} was not made by `selfpub demo` and holds {', '.join(p.name for p in leftovers)}, which a demo "
            "run would delete: pass an empty or new directory with --dir"
        )
    for path in leftovers:
        shutil.rmtree(path)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by `selfpub demo`: its state and pds folders are wiped at the next run\n")


def demo(
    directory: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--dir", help="Where the demo keeps its state (default: ./selfpub-demo). A directory the demo made "
        "is wiped first; any other must not hold state/ or pds/.",
    ),
    pds_dir: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--pds-dir", help="Where the local Bluesky PDS peer is installed (default: build/node/pds, `make peers`)."
    ),
    bluesky: bool = typer.Option(True, "--bluesky/--no-bluesky", help="Also post to a local PDS when one is installed."),
) -> None:
    """Fund the agent on the embedded chain, run cycles until it pauses, tip it, watch it resume."""
    from daemon.demo import run_demo

    workdir = (directory or Path("selfpub-demo")).resolve()
    console = Console()
    try:
        fresh_workdir(workdir)
    except OSError as exc:
        console.print(f"[red]demo directory {workdir}: {exc.strerror or exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    except DirectoryNotOurs as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    result = asyncio.run(run_demo(workdir, console, pds_dir=pds_dir, bluesky=bluesky))
    ok = bool(result.cycles) and bool(result.paused_reason) and result.resumed
    console.print("[bold green]demo finished[/]" if ok else "[bold red]demo did not show pause and resume[/]")
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command("demo")(demo)
