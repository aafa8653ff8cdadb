"""Balance, spend and income over time: the numbers and a chart (`selfpub ledger plot`).

    p = points(journal, since=..., now=...)  # ledger.reads.money_series: the status page's chart too
    p, e = story(journal, budget=settings.budget, now=...)  # ledger.reads.money_story: points and events
    s = series(journal, by="day")            # Series of ints (ucr), one entry per period (the report's)
    render(journal, "ledger.png", budget=settings.budget)  # or .svg; matplotlib, Agg, no display needed

The top panel draws `story()` as step lines with its events marked (deposits,
tips, and with the budget's thresholds the pauses and resumes): the same points
and events the status page draws; the bottom panel has spend and income per period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from config.settings import BudgetSettings
from kernel.clock import utcnow
from kernel.money import UCR_PER_CREDIT
from ledger.journal import Journal
from ledger.query import as_moment, next_bucket, period_series
from ledger.reads import DEPOSIT, PAUSE, RESUME, TIP, Event, Point, event_label, money_series, money_story

FORMATS = (".png", ".svg")
EVENT_STYLE = {DEPOSIT: ("tab:purple", "^"), TIP: ("tab:green", "^"), PAUSE: ("tab:orange", "v"),
               RESUME: ("tab:cyan", "o")}  # (colour, marker) of each event on the balance line


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


def story(
    journal: Journal,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    now: datetime | None = None,
    budget: BudgetSettings | None = None,
) -> tuple[list[Point], list[Event]]:
    """points() and their events: deposits, tips, and with `budget` the pauses and resumes (ledger.reads.money_story)."""
    end = as_moment(until, end=True) or as_moment(now) or utcnow()
    return money_story(journal, since=as_moment(since), until=end,
                       min_balance=budget.min_balance if budget else None,
                       resume_balance=budget.resume_balance if budget else None)


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
    budget: BudgetSettings | None = None,
) -> Path:
    """Draw money so far (step lines and events, the status page's) over spend and income per period (bars)."""
    out = Path(out_path)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"plot to a {' or '.join(FORMATS)} file, not {out.name!r}")
    s = series(journal, since=since, until=until, by=by, now=now)
    steps, events = story(journal, since=since, until=until, now=now, budget=budget)
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
    _mark(top, steps, events, date2num)
    top.ticklabel_format(axis="y", useOffset=False, style="plain")
    top.set_ylabel("credits")
    top.set_title(f"selfpub ledger (bars: per {by})")
    top.legend(loc="best")  # wherever it hides the fewest marks
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


def _mark(axes, steps: list[Point], events: list[Event], date2num) -> None:  # noqa: ANN001 - matplotlib objects
    """Each event as a marker on the balance line at its time, a dotted line and its label; one legend entry a kind."""
    if not steps:
        return
    seen: set[str] = set()
    stacked: dict[float, int] = {}  # labels already at this time: the next one goes above them
    for e in events:
        balance = next((p.balance for p in reversed(steps) if p.at <= e.at), steps[0].balance)
        colour, marker = EVENT_STYLE[e.kind]
        x = float(date2num(e.at))
        axes.axvline(x, color=colour, linestyle=":", linewidth=1)
        axes.plot([x], [balance / UCR_PER_CREDIT], marker=marker, color=colour, markersize=9, linestyle="none",
                  label=None if e.kind in seen else e.kind)
        above = stacked[x] = stacked.get(x, -1) + 1
        axes.annotate(event_label(e), (x, balance / UCR_PER_CREDIT), textcoords="offset points",
                      xytext=(4, 6 + 11 * above), fontsize=8, color=colour)
        seen.add(e.kind)
