"""Balance, spend and income over time: the numbers (for the status page) and a chart.

    s = series(journal, by="day")        # Series of ints (ucr), one point per period
    render(journal, "ledger.png")        # or .svg; matplotlib, Agg, no display needed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from kernel.clock import utcnow
from kernel.money import UCR_PER_CREDIT
from ledger.journal import Journal
from ledger.query import as_moment, next_bucket, period_series

FORMATS = (".png", ".svg")


@dataclass(frozen=True)
class Series:
    """Parallel lists, one entry per period: its first day, wallet balance at its end, spend, income (ucr)."""

    by: str
    start: list[date]
    balance: list[int]
    spend: list[int]
    income: list[int]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: {"by", "start": [YYYY-MM-DD], "balance", "spend", "income"}."""
        return {
            "by": self.by,
            "start": [d.isoformat() for d in self.start],
            "balance": list(self.balance),
            "spend": list(self.spend),
            "income": list(self.income),
        }


def series(
    journal: Journal,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    by: str = "day",
    now: datetime | None = None,
) -> Series:
    """Balance, spend and income per day, week or month (ints of ucr)."""
    end = as_moment(until, end=True) or as_moment(now) or utcnow()
    rows = period_series(journal, since=as_moment(since), until=end, by=by)
    return Series(
        by=by,
        start=[r.start for r in rows],
        balance=[r.balance for r in rows],
        spend=[r.spend for r in rows],
        income=[r.income for r in rows],
    )


def render(
    journal: Journal,
    out_path: str | Path,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    by: str = "day",
    now: datetime | None = None,
) -> Path:
    """Draw the wallet balance (line) over spend and income (bars) to a .png or .svg file."""
    out = Path(out_path)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"plot to a {' or '.join(FORMATS)} file, not {out.name!r}")
    s = series(journal, since=since, until=until, by=by, now=now)
    # Figure + the Agg canvas directly: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    # Display only: credits as plotting coordinates, never stored or summed.
    def credits(values: list[int]) -> list[float]:
        return [v / UCR_PER_CREDIT for v in values]

    fig = Figure(figsize=(10, 6), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    x = [float(date2num(d)) for d in s.start]
    ends = [float(date2num(next_bucket(d, by))) for d in s.start]
    top.plot(ends, credits(s.balance), color="tab:blue", marker="o" if len(s.start) < 60 else None,
             label="wallet balance (at period end)")
    top.ticklabel_format(axis="y", useOffset=False, style="plain")
    top.set_ylabel("credits")
    top.set_title(f"selfpub ledger, by {by}")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    # Two bars inside each period: spend in its first half, income in its second.
    widths = [(e - v) * 0.4 for v, e in zip(x, ends)]
    bottom.bar([v + w / 4 for v, w in zip(x, widths)], credits(s.spend), width=widths, align="edge",
               color="tab:red", label="spend")
    bottom.bar([v + w * 1.25 for v, w in zip(x, widths)], credits(s.income), width=widths, align="edge",
               color="tab:green", label="income")
    bottom.ticklabel_format(axis="y", useOffset=False, style="plain")
    bottom.set_ylabel("credits")
    bottom.legend(loc="upper left")
    bottom.grid(alpha=0.3)
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if not s.start:
        top.text(0.5, 0.5, "no transactions yet", transform=top.transAxes, ha="center", va="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=out.suffix.lower().lstrip("."))
    return out
