"""Tokens per published article: selfpub vs a like-for-like crew vs a CrewAI crew, same items, same counting server.

    .venv/bin/python bench/side_by_side/run.py [--items 20] [--words 300] [--revise 0.3] [--seed 15]
                                               [--critic-view full|excerpt] [--skip-crewai]

Every side turns the same feed items (items_long.json: each links to a full article of 1,500-6,000
characters, served with the feed by a local site) into articles of at least --words words through one
CountingServer on 127.0.0.1, which counts every prompt and completion token with one tokenizer and
reports it as usage. Its stand-in reviewer asks for one revision of the same seeded share (--revise)
of topics on every side.

    selfpub             the daemon's own wiring (build_deps: feed and article pages over HTTP, research call,
                        writer, critic, revisions, local outbox); its critic reads the whole draft
                        (--critic-view full, the fair setting) or its own excerpt (excerpt)
    like-for-like crew  crew_like.py: brief made in code from the same extracted article, a writer, a
                        critic that scores the whole draft without rewriting, the same revision rule; run
                        twice: its writer told to cite the source as inline links, then (as selfpub's
                        writer is) to link it only in the Sources list
    CrewAI crew         crew.py in its own virtualenv (setup_crewai.sh), when installed; else skipped

An article is published when it reached the outbox (selfpub), passed its critic (crew) or is the crew's
final output (CrewAI). Every published article then goes through the same deterministic checks
(checks.py: agents/quality.py's findings and the length): the pass rate is passed / items.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agents.messages import Draft  # noqa: E402
from bench.side_by_side.checks import item_of, markdown_draft, outbox_draft, verdict  # noqa: E402
from bench.side_by_side.crew_like import LikeForLikeCrew  # noqa: E402
from bench.side_by_side.model import Revisions  # noqa: E402
from bench.side_by_side.peers import FeedServer, on_site  # noqa: E402
from bench.side_by_side.selfpub_side import (  # noqa: E402
    LONG_ITEMS_FILE, PRICE, SelfpubRun, critic_reads_whole_draft, load_items, selfpub_settings,
)
from bench.side_by_side.server import CountingServer, Tally  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CREWAI_PYTHON = ROOT / "build" / "bench-crewai" / "bin" / "python"
CREW_TIMEOUT_SECONDS = 900
MAX_CYCLES = 6  # selfpub: cycles until every item is done (revisions may take a cycle more)


@dataclass
class Side:
    """What one side produced, what the checks say of it and what it cost."""

    name: str
    tally: Tally
    items: int
    verdicts: list[list[str]] = field(default_factory=list)  # per published article: failed check codes
    seconds: float = 0.0
    note: str = ""

    @property
    def published(self) -> int:
        return len(self.verdicts)

    @property
    def passed(self) -> int:
        return sum(not v for v in self.verdicts)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.items if self.items else 0.0

    def per(self, n: int, tokens: int | None = None) -> float:
        """Tokens (or the given count) per n articles."""
        return (self.tally.tokens if tokens is None else tokens) / n if n else float("nan")

    @property
    def per_published(self) -> float:
        return self.per(self.published)

    @property
    def per_passed(self) -> float:
        return self.per(self.passed)

    def cost_per_published(self) -> float:
        """ucr per published article at the bench price (output tokens cost 4x)."""
        t = self.tally
        total = (t.prompt_tokens * PRICE.input_per_million + t.completion_tokens * PRICE.output_per_million) / 1_000_000
        return float(total) / self.published if self.published else float("nan")


def judged(drafts: list[tuple[Draft | None, dict | None]], words: int) -> list[list[str]]:
    """The check verdict of each published article (one that cites no item fails as 'no_item')."""
    return [verdict(d, it, words) if it is not None else ["no_item"] for d, it in drafts]


async def run_selfpub(server: CountingServer, llm_url: str, items: list[dict], words: int = 300,
                      critic_view: str = "full") -> Side:
    """selfpub turns the items of one feed into articles (daemon wiring, article pages fetched, local outbox)."""
    server.mark("selfpub")
    t0 = time.perf_counter()
    site = FeedServer()
    with site.serve() as base, tempfile.TemporaryDirectory() as tmp:
        site.items = on_site(items, base)
        settings = selfpub_settings(Path(tmp), llm_url, f"{base}/feed.xml", items_per_cycle=len(items),
                                    fetch_articles=any(it.get("content") for it in items))
        run = SelfpubRun(settings)
        errors: list[str] = []
        try:
            with critic_reads_whole_draft() if critic_view == "full" else _nothing():
                for _ in range(MAX_CYCLES):
                    report = await run.cycle()
                    errors += report.errors
                    if report.planned == 0 and report.resumed == 0:
                        break
            drafts = []
            for path in sorted((run.settings.state_dir / "outbox").glob("*.md")):
                d = outbox_draft(path.read_text(encoding="utf-8"))
                drafts.append((d, item_of(d, site.items) if d else None))
        finally:
            await run.aclose()
    return Side("selfpub", server.totals("selfpub"), len(items), judged(drafts, words), time.perf_counter() - t0,
                "; ".join(errors[:3]))


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def run_crew(server: CountingServer, llm_url: str, items: list[dict], words: int = 300, inline_links: bool = True) -> Side:
    """The like-for-like crew on the same items and site (inline_links=False: linking only in its Sources list)."""
    t0 = time.perf_counter()
    tag = "crew" if inline_links else "crew-no-inline-links"
    site = FeedServer()
    with site.serve() as base:
        site.items = on_site(items, base)
        results = LikeForLikeCrew(llm_url, words, inline_links, tag).run(list(site.items))
    drafts = [(markdown_draft(r.article), r.item) for r in results if r.approved]
    revised = sum(r.revisions for r in results)
    return Side("like-for-like" if inline_links else "crew no-links", server.totals(tag), len(items),
                judged(drafts, words), time.perf_counter() - t0, f"{revised} revisions")


def run_crewai(server: CountingServer, llm_url: str, items: list[dict], words: int, python: Path) -> Side:
    """The CrewAI crew turns the same items into articles, in its own virtualenv."""
    server.mark("crewai")
    site = FeedServer()
    with site.serve() as base, tempfile.TemporaryDirectory() as tmp:
        site.items = on_site(items, base)
        items_file, out = Path(tmp) / "items.json", Path(tmp) / "articles.json"
        items_file.write_text(json.dumps(list(site.items)), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTHON"))}
        env.update({"CREWAI_STORAGE_DIR": str(Path(tmp) / "crewai-storage"), "HOME": tmp})
        cmd = [str(python), str(HERE / "crew.py"), "--items", str(items_file), "--base-url", llm_url,
               "--words", str(words), "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CREW_TIMEOUT_SECONDS, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return Side("crewai", server.totals("crewai"), len(items), [], seconds, "crew failed: " + " | ".join(tail))
        data = json.loads(out.read_text(encoding="utf-8"))
        by_url = {it["url"]: it for it in site.items}
        drafts = [(markdown_draft(a["article"]), by_url.get(a["url"])) for a in data["articles"]]
    return Side(f"crewai {data['crewai']}", server.totals("crewai"), len(items), judged(drafts, words), seconds)


def print_side(s: Side) -> None:
    t = s.tally
    failed = sorted({c for v in s.verdicts for c in v})
    print(f"{s.name:14} {s.published:>3} published, {s.passed:>3} pass the checks ({s.pass_rate:4.0%})  "
          f"{t.calls:>4} calls  {t.prompt_tokens:>7} prompt + {t.completion_tokens:>6} completion = {t.tokens:>7} tokens  "
          f"-> {s.per_published:6.0f} tokens/published ({s.per_passed:6.0f}/passed, "
          f"{s.cost_per_published():.0f} ucr/published)  {s.seconds:5.1f} s")
    for kind, (calls, p, c) in sorted(t.by_kind.items()):
        n = max(s.published, 1)
        print(f"{'':16}{kind:9} {calls:>4} calls  {p / n:7.0f} prompt + {c / n:6.0f} completion per published article")
    if failed:
        print(f"{'':16}failed checks: {', '.join(failed)}")
    if s.note:
        print(f"{'':16}note: {s.note}")


def ratio_line(a: Side, b: Side) -> str:
    """a's tokens per published (and per passed) article over b's, from the counted tokens."""
    return (f"ratio {a.name}/{b.name} tokens per published article: {a.per_published / b.per_published:.2f} "
            f"(per passing article {a.per_passed / b.per_passed:.2f}; pass rates {a.pass_rate:.0%} / {b.pass_rate:.0%}; "
            f"cost {a.cost_per_published() / b.cost_per_published():.2f})")


def main() -> int:
    """Run every side and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--words", type=int, default=300, help="required article length")
    ap.add_argument("--revise", type=float, default=0.3, help="share of topics whose first review asks for a revision")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--critic-view", choices=("full", "excerpt"), default="full")
    ap.add_argument("--skip-crewai", action="store_true")
    ap.add_argument("--crewai-python", type=Path, default=CREWAI_PYTHON)
    args = ap.parse_args()
    items = load_items(LONG_ITEMS_FILE, limit=args.items)
    server = CountingServer(words=args.words, revisions=Revisions(args.revise, args.seed))
    crewai = None
    with server.serve() as url:
        sp = asyncio.run(run_selfpub(server, url, items, args.words, args.critic_view))
        crew = run_crew(server, url, items, args.words)
        plain = run_crew(server, url, items, args.words, inline_links=False)
        if not args.skip_crewai:
            if args.crewai_python.exists():
                crewai = run_crewai(server, url, items, args.words, args.crewai_python)
            else:
                print(f"CrewAI side skipped: no {args.crewai_python} (run bash bench/side_by_side/setup_crewai.sh)")
    sizes = [len(it.get("content", "")) for it in items]
    print(f"{len(items)} feed items (articles of {min(sizes)}-{max(sizes)} characters) -> articles of >= {args.words} "
          f"words; revisions asked for {args.revise:.0%} of topics (seed {args.seed}); selfpub's critic view: "
          f"{args.critic_view}; tokens counted by the server with {server.counter.name}")
    for side in (sp, crew, plain, *([crewai] if crewai else [])):
        print_side(side)
    print(ratio_line(sp, crew))
    print(ratio_line(sp, plain) + "  <- the crew also told to link only in its Sources list")
    if crewai is not None and crewai.published:
        print(ratio_line(sp, crewai))
    if server.unknown:
        print(f"requests the server does not serve: {sorted(set(server.unknown))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
