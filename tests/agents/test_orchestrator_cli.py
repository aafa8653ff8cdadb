"""`selfpub cycle --dry-run` and `selfpub drafts list|show|approve|reject`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from agents.tasks import APPROVED, HELD, REJECTED, TaskStore
from kernel.db import make_engine
from daemon.cli import app
from tests.fakes.scripted_llm import sample_item


def setup(tmp_path):
    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[approval]\nmode = "manual"\n')
    engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'selfpub.db'}")
    store = TaskStore(engine)
    store.migrate()
    held = []
    for i in (1, 2):
        t = store.create(cycle_id="c", items=[sample_item(i)])
        held.append(store.advance(t, HELD, held_until=datetime.now(timezone.utc) + timedelta(hours=1)).id)
    return cfg, store, held


def run(cfg, *args):
    return CliRunner().invoke(app, ["--config", str(cfg), *args], catch_exceptions=False)


def test_drafts_list_show_approve_reject(tmp_path):
    cfg, store, (a, b) = setup(tmp_path)
    out = run(cfg, "drafts", "list")
    assert out.exit_code == 0 and a[:12] in out.output and b[:12] in out.output
    assert "Rust news 1" in run(cfg, "drafts", "show", a[:8]).output
    assert run(cfg, "drafts", "approve", a[:8]).exit_code == 0
    assert run(cfg, "drafts", "reject", b, "--reason", "off topic").exit_code == 0
    assert store.get(a).status == APPROVED
    assert store.get(b).status == REJECTED and store.get(b).reasons[-1].endswith("off topic")
    again = run(cfg, "drafts", "approve", b)
    assert again.exit_code == 1 and "cannot make it approved" in again.output


def test_cycle_dry_run_prints_the_plan_without_model_calls(tmp_path):
    cfg, _, _ = setup(tmp_path)
    from config.loader import load_settings
    from ledger.funding import deposit
    from ledger.journal import Journal

    settings = load_settings(cfg, {})
    journal = Journal(make_engine(settings.database_url))
    journal.migrate()
    deposit(journal, 5_000_000)
    out = run(cfg, "cycle", "--dry-run")
    assert out.exit_code == 0, out.output
    assert "DRY_RUN" in out.output and "would work on" in out.output and "cost: 0.000000" in out.output
