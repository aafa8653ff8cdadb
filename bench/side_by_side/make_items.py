"""Writes items_long.json: the 20 bench items, each with the full text of its article (1,500-6,000 characters).

    .venv/bin/python bench/side_by_side/make_items.py     # offline, deterministic; the output is committed

The bench's local site (peers.FeedServer) serves each article as an HTML page at the item's URL, so
selfpub fetches and extracts it (research.fetch_articles) and its research call runs, as it would on a
real feed whose items link to full articles. Each article opens with the item's summary, then sections
a developer-news article has (background, what changes, upgrading, performance, reactions, what is
next), written around the item's subject; their lengths are spread over 1,500-6,000 characters.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "items.json"
OUT = HERE / "items_long.json"
MIN_CHARS, MAX_CHARS = 1_500, 6_000

SUBJECTS = {  # item title -> (the subject, the people who use it)
    "Python 3.14": ("the free-threaded CPython build", "Python developers"),
    "SQLite 3.45": ("SQLite's JSONB format", "teams that keep JSON in SQLite"),
    "PostgreSQL 17": ("incremental backup in pg_basebackup", "PostgreSQL operators"),
    "The Rust 2024": ("the Rust 2024 edition", "Rust library authors"),
    "Connection pooling": ("connection pooling in async HTTP clients", "service developers"),
    "WebAssembly": ("WASI 0.2 and the component model", "WebAssembly toolchain authors"),
    "Keeping secrets": ("systemd credentials", "Linux administrators"),
    "OpenTelemetry": ("the OpenTelemetry logs signal for Python", "teams running Python services"),
    "Near-duplicate": ("MinHash LSH", "data engineers"),
    "Bluesky": ("OAuth for AT Protocol apps", "Bluesky app developers"),
    "llama.cpp": ("grammar-enforced JSON schemas in llama.cpp's server", "developers of LLM applications"),
    "Auditing": ("pip-audit and SBOMs", "Python maintainers"),
    "Git 2.45": ("the reftable backend", "Git hosting operators"),
    "Node.js 22": ("type stripping in Node.js", "TypeScript developers"),
    "Go 1.23": ("range-over-func iterators", "Go developers"),
    "uv brings": ("uv's project management", "Python developers"),
    "Kubernetes 1.30": ("structured authentication configuration", "Kubernetes cluster administrators"),
    "HTTP/3": ("HTTP/3", "web developers"),
    "Docker BuildKit": ("BuildKit build checks", "teams that build container images"),
    "Redis changes": ("the Valkey fork", "teams running Redis"),
}

SECTIONS = (
    ("Background", (
        "For years {users} have asked for a better answer here, and {subject} is the result of a long public discussion.",
        "The proposal went through several drafts, each tested by early adopters on real workloads before it was accepted.",
        "Maintainers kept the old behaviour available during the transition, so nobody is forced to move on day one.",
        "The design notes explain which alternatives were rejected and why, which is worth reading before adopting it.",
    )),
    ("What changes", (
        "The most visible change is that {subject} is now the documented and supported path rather than an experiment.",
        "Defaults stay the same for existing projects, and the new behaviour is opt-in until the next major release.",
        "Error messages were rewritten to say what went wrong and which setting to change, instead of printing a stack trace.",
        "The documentation gained a migration guide with worked examples for the common cases.",
        "Tooling that reads the old format keeps working, because the change is additive at the file and protocol level.",
    )),
    ("Upgrading", (
        "Upgrading is a matter of updating the dependency and running the test suite, according to the release notes.",
        "{users} with custom integrations should check the list of deprecated interfaces, which will be removed in a later version.",
        "Continuous integration images were updated at release, so most pipelines pick the new version up without edits.",
        "A compatibility flag restores the previous behaviour for the rare project that relies on an undocumented detail.",
    )),
    ("Performance", (
        "Benchmarks published with the release show gains on typical workloads and no regression on the slow paths.",
        "The numbers come from the project's own benchmark suite, run on commodity hardware and published with their scripts.",
        "Memory use is roughly flat, and start-up time is unchanged for small programs.",
        "Independent measurements by early adopters broadly agree, with larger gains on workloads that hit the changed code hardest.",
    )),
    ("Reactions", (
        "Early feedback from {users} has been positive, with most reports describing a smooth upgrade.",
        "Some maintainers asked for a longer deprecation window, and the project agreed to keep the old path for two more releases.",
        "Several large users said they had run {subject} in production during the preview period without incident.",
        "Critics point out that the change adds one more option to learn, and that the documentation still lags in places.",
    )),
    ("What is next", (
        "The roadmap lists further work on {subject}, including better diagnostics and wider platform support.",
        "Maintainers invite {users} to report problems on the issue tracker, with a minimal reproduction where possible.",
        "A follow-up release is planned to address the first round of feedback and to tighten the documentation.",
    )),
)


def subject_of(title: str) -> tuple[str, str]:
    """The subject and the readers of an item, from its title."""
    for prefix, value in SUBJECTS.items():
        if title.startswith(prefix):
            return value
    return title, "developers"


def article(item: dict, target: int, rng: random.Random) -> str:
    """The article's text: the summary as its lead, then sections until `target` characters."""
    subject, users = subject_of(item["title"])
    paragraphs = [item["summary"]]
    order = list(SECTIONS)
    for heading, lines in order:
        if sum(len(p) for p in paragraphs) >= target:
            break
        picked = [s.format(subject=subject, users=users) for s in lines]
        rng.shuffle(picked)
        text = " ".join(picked)
        text = text[0].upper() + text[1:]
        paragraphs.append(f"## {heading}\n{text}")
    body = "\n\n".join(paragraphs)
    while len(body) < target:  # longer articles: a second round of detail, differently ordered
        heading, lines = order[rng.randrange(len(order))]
        picked = [s.format(subject=subject, users=users) for s in lines]
        rng.shuffle(picked)
        extra = " ".join(picked[: max(2, len(picked) - 1)])
        body += f"\n\n{extra[0].upper()}{extra[1:]}"
    return body[:MAX_CHARS].rsplit(".", 1)[0] + "."


def main() -> int:
    items = json.loads(SOURCE.read_text(encoding="utf-8"))
    rng = random.Random(15)
    out = []
    for i, it in enumerate(items):
        target = MIN_CHARS + (i * 2_371) % (MAX_CHARS - MIN_CHARS - 400)  # spread over the range
        out.append(it | {"content": article(it, target, rng)})
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sizes = sorted(len(it["content"]) for it in out)
    print(f"{len(out)} items, article text {sizes[0]}-{sizes[-1]} characters -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
