"""Balance, spend and income over time: the numbers and a chart (`selfpub ledger plot`).

    p = points(journal, since=..., now=...)  # ledger.reads.money_series: the status page's chart too
    s = series(journal, by="day")            # Series of ints (ucr), one entry per period (the report's)
    render(journal, "ledger.png")            # or .svg; matplotlib, Agg, no display needed

The top panel draws `points()` as step lines, the same series the status page
draws, so a pause, a tip and the resume show in both; the bottom panel has
spend and income per period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from kernel.clock import utcnow
from kernel.money import UCR_PER_CREDIT
from ledger.journal import Journal
from ledger.query import as_moment, next_bucket, period_series
from ledger.reads import Point, money_series

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


def points(
    journal: Journal,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    now: datetime | None = None,
) -> list[Point]:
    """Balance (wallet minus owed), cumulative spend and income at each transaction of [since, until)."""
    end = as_moment(until, end=True) or as_moment(now) or utcnow()
    return money_series(journal, since=as_moment(since), until=end)


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
    """Draw money so far (step lines, the status page's series) over spend and income per period (bars)."""
    out = Path(out_path)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"plot to a {' or '.join(FORMATS)} file, not {out.name!r}")
    s = series(journal, since=since, until=until, by=by, now=now)
    steps = points(journal, since=since, until=until, now=now)
    # Figure + the Agg canvas directly: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    # Display only: credits as plotting coordinates, never stored or summed.
    def credits(values: list[int]) -> list[float]:
        return [v / UCR_PER_CREDIT for v in values]

    fig = Figure(figsize=(10, 6), layout="constrained")
    FigureCanvasAgg(fig)
    # Own x axes: the step lines span the transactions (minutes, in a demo), the bars whole periods.
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 2))
    x = [float(date2num(d)) for d in s.start]
    ends = [float(date2num(next_bucket(d, by))) for d in s.start]
    at = [float(date2num(p.at)) for p in steps]
    for name, colour, label in (("balance", "tab:blue", "balance (wallet minus owed to providers)"),
                                ("spend", "tab:red", "spend so far"), ("income", "tab:green", "income so far")):
        # Step lines: money changes at a transaction and stays, as on the status page.
        top.step(at, credits([getattr(p, name) for p in steps]), where="post", color=colour, label=label)
    top.ticklabel_format(axis="y", useOffset=False, style="plain")
    top.set_ylabel("credits")
    top.set_title(f"selfpub ledger (bars: per {by})")
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
    for axes in (top, bottom):
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if not steps:
        top.text(0.5, 0.5, "no transactions yet", transform=top.transAxes, ha="center", va="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=out.suffix.lower().lstrip("."))
    return out
