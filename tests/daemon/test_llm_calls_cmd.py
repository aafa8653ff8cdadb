"""`selfpub llm calls` fits an 80-column terminal: one line per call, nothing cut off past the edge."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from typer.testing import CliRunner

from agents.llm.calllog import CallLog, CallRecord
from daemon.cli import app
from daemon.context import AppContext


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    return cfg


def test_llm_calls_fits_80_columns(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    log = CallLog(AppContext(cfg, environ={}).engine)
    when = datetime(2026, 12, 7, 5, 51, 30, tzinfo=timezone.utc)
    for i in range(3):
        log.record(CallRecord(
            role="researcher", model="SmolLM2-135M-Instruct-Q8_0.gguf", endpoint="http://127.0.0.1:8080/v1",
            outcome="ambiguous", input_tokens=123_456, output_tokens=12_345, cost=1_234_567_890 + i,
            latency_ms=123_456, task_id=f"task-0123456789abcdef0123456789abcdef-{i}",
            cycle_id="cycle-1", error_class="ReadTimeout", time=when,
        ))
    result = CliRunner().invoke(app, ["--config", str(cfg), "llm", "calls"], env={"COLUMNS": "80"},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(line for line in lines if len(line) > 80)
    rows = [line for line in lines if "researcher" in line]
    assert len(rows) == 3  # one line per call, not wrapped over several
    assert all("1234.56789" in line and "ambiguous" in line for line in rows), rows
    assert "3 calls" in result.stdout
