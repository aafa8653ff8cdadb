"""The series the status page reuses, and the chart written with matplotlib's Agg canvas."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ledger import Journal
from ledger.plot import render, series
from ledger.reports import build_report
from tests.ledger.conftest import Clock
from tests.ledger.ledgerdata import populate


def test_series_are_ints_and_match_the_report(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    s = series(journal, now=clock.now)
    report = build_report(journal, budget)
    assert s.start == [p.start for p in report.series]
    assert s.balance == [p.balance for p in report.series]
    assert s.spend == [p.spend for p in report.series]
    assert s.income == [p.income for p in report.series]
    assert all(type(v) is int for v in s.balance + s.spend + s.income)
    assert s.to_dict()["start"][0] == "2026-03-02"
    weekly = series(journal, by="week", now=clock.now)
    assert sum(weekly.spend) == sum(s.spend) and weekly.start[0] == date(2026, 3, 2)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_render_writes_a_real_chart(journal: Journal, clock: Clock, tmp_path: Path, suffix: str) -> None:
    populate(journal, clock)
    out = render(journal, tmp_path / "charts" / f"ledger{suffix}", now=clock.now)
    data = out.read_bytes()
    assert len(data) > 10_000
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        from PIL import Image

        with Image.open(out) as img:
            assert img.size[0] >= 600 and img.size[1] >= 400
            assert len(set(img.convert("RGB").getdata())) > 20  # lines, bars, text: not a blank canvas
    else:
        assert b"<svg" in data[:500] and data.count(b"<path") > 10


def test_render_an_empty_ledger_and_refuse_other_formats(journal: Journal, tmp_path: Path) -> None:
    assert render(journal, tmp_path / "empty.png").stat().st_size > 1_000
    with pytest.raises(ValueError, match="png"):
        render(journal, tmp_path / "chart.gif")
