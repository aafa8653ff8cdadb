"""bench/bench_ledger.py at a small size, so the benchmark cannot rot."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_ledger.py"


def load_bench():  # noqa: ANN201
    if "bench_ledger" in sys.modules:
        return sys.modules["bench_ledger"]
    spec = importlib.util.spec_from_file_location("bench_ledger", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_ledger"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_bench_builds_a_sound_ledger_and_measures_it(engine: Engine) -> None:
    bench = load_bench()
    built = bench.build(engine, 3_000)
    assert 3_000 <= built.postings <= 3_002 and built.transactions > 1_000
    assert bench.verify(engine) == []
    with engine.connect() as conn:
        kinds = set(conn.execute(text("SELECT DISTINCT kind FROM ledger_txn")).scalars())
    assert {"deposit", "compute", "engagement", "tip"} <= kinds
    assert bench.time_report(engine, runs=1).wall > 0
    assert bench.throughput(engine, 30).wall > 0
    assert bench.verify(engine) == []


def test_bench_prints_each_figure_with_its_goal_and_ratio() -> None:
    bench = load_bench()
    out = io.StringIO()
    figures = bench.run(2_000, 20, postgres=False, out=out, cli=False)
    lines = out.getvalue().splitlines()
    assert set(figures) == {"report_s_sqlite", "pairs_per_s_sqlite"}
    assert any(line.startswith("ledger report, SQLite") and "goal < 0.5 s" in line and "ratio" in line for line in lines)
    assert any(line.startswith("reserve+commit, SQLite") and "goal > 2,000/s" in line and "ratio" in line for line in lines)
    assert lines[0].startswith("load average (1 min) at the start:") and "verify: clean" in lines[1]
    assert lines[-1].startswith("load average (1 min) at the end:")


@pytest.mark.real_llm
def test_bench_times_under_a_normal_runs_load_and_stops_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench()
    started: list = []

    class Recorded(bench.NormalRun):
        def start(self):  # noqa: ANN202
            started.append(super().start())
            return started[-1]

    monkeypatch.setattr(bench, "NormalRun", Recorded)
    out = io.StringIO()
    figures = bench.run(2_000, 300, postgres=False, out=out, cli=False, load="normal")
    lines = out.getvalue().splitlines()
    (normal,) = started
    calls, tokens, seconds, _cpu = normal.window
    assert calls + tokens > 0 and normal.failed == 0 and seconds > 0  # the model generated while it was timed
    assert normal._server is None  # stopped: no llama.cpp server left behind
    assert figures["load_tokens_per_s_sqlite"] == tokens / seconds
    assert any(line.startswith("reserve+commit, SQLite, 1 writer (normal load)") and "ratio" in line for line in lines)
    assert any(line.startswith("ledger report, SQLite, 2,000 postings (normal load)") for line in lines)
    (applied,) = [line for line in lines if "load: a normal run's (the embedded model, threads " in line]
    assert f"{calls} calls, {tokens:,} tokens in " in applied
    assert any("load average (1 min) as the timing starts:" in line for line in lines)
    assert lines[-1].startswith("load average (1 min) at the end:")


def test_bench_says_when_no_load_was_applied() -> None:
    out = io.StringIO()
    load_bench().run(2_000, 20, postgres=False, out=out, cli=False)
    assert "  load: none applied (a quiet process)" in out.getvalue().splitlines()
