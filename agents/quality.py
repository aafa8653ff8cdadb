"""The quality floor: deterministic gates a draft must pass before any model reviews it.

A small model can score its own kind of failure 10/10 (a title "Data brief", a body
"<h1>Data Brief</h1>", "Your article is in JSON format..."), so these shapes are refused
by code, each with a short machine-readable code and a message a person reads:

    title ────────── placeholder_title   every word is meta vocabulary ("Data brief", "Untitled"),
                                          or it talks about the article or its format ("... in Markdown")
    all fields ───── prompt_echo         a run of words from our own prompts, the brief's field labels,
                                          or talk about the reply itself ("Your article is in JSON format")
    body prose ───── too_short           fewer than review.min_words words or review.min_sentences sentences
                                          (headings, code, the sources section and the disclosure not counted)
    body ─────────── raw_html            an HTML tag outside code (Markdown only)
                     no_sources          no "Sources" heading followed by a link to a source of the brief
                     key_points_missed   fewer than review.min_key_point_coverage of the brief's key points
                                          covered (half of a point's content words present, lightly stemmed)
                     bare_link_label     a link whose text is only a host name or a URL
                     no_disclosure       the configured AI disclosure is missing (body or Bluesky text)
    tags ─────────── missing_tags        the feed gave tags and the draft has none

`Finding.problem` is "code: message", the form the critic stores in its Review and that every
place showing the critic's reasons (task reason, drafts list, status page) shows as is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from agents.messages import Brief, Draft, FeedItem
from agents.prompts import load_prompt
from agents.text import extract_urls, same_url
from config.settings import DisclosureSettings, ReviewSettings

# Words that say nothing about a subject: a title made only of them is a placeholder.
META_WORDS = frozenset(
    "a an the this that your my our its of for in on about to and or with here is are new short one two "
    "data brief briefs research article articles post posts blog title titles untitled draft drafts summary "
    "technical tech markdown md json yaml format formatted dev devto text content heading headline output "
    "response reply answer example sample placeholder insert name topic angle key point points document "
    "story piece write writing written generated template lorem ipsum report note notes overview intro "
    "introduction tldr update news item items ai model llm body field fields".split()
)
_META_TITLE = re.compile(
    r"\b(your|this|the|my|our)\s+(article|post|blog\s+post|draft|title|reply|answer)\b"
    r"|\b(article|post|draft|reply|answer|title)\s+(in|as)\s+(json|markdown|yaml)\b"
    r"|^\s*title\s*:|\btitle\s+(here|goes\s+here)\b|lorem\s+ipsum"
    r"|[\[{<][^\]}>]*[\]}>]",  # a template slot: [Title], {title}, <title>
    re.IGNORECASE,
)
# The reply talking about itself or its instructions instead of the subject.
_ECHO_PHRASES = re.compile(
    r"\b(your|this|the|my)\s+(article|post|draft|reply|answer|response)\s+(is|was|will\s+be)\s+"
    r"(in|written|formatted|as|below)\b"
    r"|\b(here\s+is|here's|below\s+is)\s+(the|your|my|an?)\s+(article|post|draft|blog\s+post|json|markdown)\b"
    r"|\b(article|post|draft|reply|answer)\s+(in|as)\s+(json|markdown)\b|\bas\s+an\s+ai\b|\bresearch\s+brief\b"
    r"|\bdata\s+sections?\b"
    r"|<<<|>>>|\bEND\s+DATA\b|\b(body_markdown|bsky_text|key_points|source_url)\b"
    r"|^\s*(topic|angle|key\s+points|body_markdown|bsky_text)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
ECHO_WORDS = 6  # a run of this many words of our own prompts in a draft is an echo
_SOURCES_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*\**\s*(sources|references|further\s+reading)\b", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_HTML_TAG = re.compile(r"<!--|<\s*/?\s*[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?\s*>")
_CODE = re.compile(r"```.*?(?:```|$)|~~~.*?(?:~~~|$)|`[^`\n]*`", re.DOTALL)
_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]*)>?[^)]*\)")
_BARE_HOST = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?(?:(?:[a-z0-9-]+\.)+[a-z]{2,}|\d{1,3}(?:\.\d{1,3}){3}|localhost)"
    r"(?::\d+)?(?:/\S*)?$",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_][\w'’.-]*[^\W_]|[^\W_]", re.UNICODE)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n")
SENTENCE_MIN_WORDS = 4  # a fragment shorter than this ("More below.") is not counted as a sentence
KEY_POINT_TERMS = 0.5  # a key point is covered when this fraction of its content words is in the body
STOP_WORDS = frozenset(
    "the a an and or but of for in on at to by with from as is are was were be been being it its this that "
    "these those than then there their they them we you your our not no can could will would should may "
    "might has have had do does did which who whom what when where why how all any each more most other "
    "some such only own same so too very just also into over under about after before between through new".split()
)


@dataclass(frozen=True)
class Finding:
    """One reason a draft is refused: a code for machines, a message and a fix for people (and the writer)."""

    code: str
    message: str
    fix: str

    @property
    def problem(self) -> str:
        """The form stored in a Review and shown wherever the critic's reasons are shown."""
        return f"{self.code}: {self.message}"


def words(text: str) -> list[str]:
    """The words of a text (numbers and hyphenated words count as one)."""
    return _WORD.findall(text)


def title_is_placeholder(title: str) -> bool:
    """True for a title that names no subject: only meta words, or talk about the article or its format."""
    ws = [w.lower().strip(".'’-") for w in words(title.replace(".", " ").replace("_", " "))]
    return not ws or all(w in META_WORDS for w in ws) or bool(_META_TITLE.search(title))


def prose(markdown: str, disclosure: str = "") -> str:
    """The body's own prose: code, headings, the sources section and the disclosure out; links as their labels."""
    text = _CODE.sub(" ", markdown)
    if disclosure:
        text = text.replace(disclosure.strip(), " ")
    kept: list[str] = []
    in_sources = False
    for line in text.splitlines():
        if _HEADING.match(line):
            in_sources = bool(_SOURCES_HEADING.match(line))
            kept.append("")
            continue
        if not in_sources:
            kept.append(line)
    return _LINK.sub(r"\1", "\n".join(kept))


def sentences(text: str) -> list[str]:
    """The sentences of prose with at least SENTENCE_MIN_WORDS words."""
    parts = (" ".join(p.strip(" -*>#").split()) for p in _SENTENCE_SPLIT.split(text))
    return [p for p in parts if len(words(p)) >= SENTENCE_MIN_WORDS]


def _stem(word: str) -> str:
    w = word.lower().strip(".'’-")
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            w = w[: -len(suffix)]
            break
    return w[:6]


def terms(text: str) -> set[str]:
    """Content words of a text, lightly stemmed (what the coverage measure compares)."""
    return {_stem(w) for w in words(text) if w.lower() not in STOP_WORDS and (len(w) > 2 or w.isdigit())}


def covers(claim: str, text: str) -> bool:
    """True when the text holds at least KEY_POINT_TERMS of the claim's content words (lightly stemmed)."""
    want = terms(claim)
    return not want or len(want & terms(text)) >= KEY_POINT_TERMS * len(want)


def key_point_coverage(brief: Brief, body_prose: str) -> tuple[float, list[str]]:
    """(fraction of the brief's key points the prose covers, the claims it misses); 1.0 for no key points."""
    if not brief.key_points:
        return 1.0, []
    missed = [kp.claim for kp in brief.key_points if not covers(kp.claim, body_prose)]
    return 1 - len(missed) / len(brief.key_points), missed


@lru_cache(maxsize=1)
def prompt_shingles() -> frozenset[tuple[str, ...]]:
    """Every run of ECHO_WORDS words in our own prompts' instructions (writer, research, critic)."""
    out: set[tuple[str, ...]] = set()
    for name in ("writer", "research", "critic"):
        ws = [w.lower() for w in words(load_prompt(name).system)]
        out.update(tuple(ws[i:i + ECHO_WORDS]) for i in range(len(ws) - ECHO_WORDS + 1))
    return frozenset(out)


def echoes_prompt(text: str) -> str | None:
    """The echoed words when the text repeats our prompts or talks about the reply itself, else None."""
    text = _CODE.sub(" ", text)  # a REPL prompt (>>>) in code is not an echo
    m = _ECHO_PHRASES.search(text)
    if m:
        return " ".join(m.group(0).split())
    ws = [w.lower() for w in words(text)]
    shingles = prompt_shingles()
    for i in range(len(ws) - ECHO_WORDS + 1):
        if tuple(ws[i:i + ECHO_WORDS]) in shingles:
            return " ".join(ws[i:i + ECHO_WORDS])
    return None


def bare_labels(markdown: str) -> list[str]:
    """Link texts that are only a host name or a URL (or empty)."""
    out = []
    for m in _LINK.finditer(_CODE.sub(" ", markdown)):
        label = m.group(1).strip(" `*_")
        if not label or _BARE_HOST.match(label):
            out.append(label or '""')
    return list(dict.fromkeys(out))


def has_sources_section(markdown: str, sources: Sequence[str]) -> bool:
    """True when a Sources heading is followed by a link to one of the sources."""
    lines = _CODE.sub(" ", markdown).splitlines()
    for i, line in enumerate(lines):
        if _SOURCES_HEADING.match(line):
            section = []
            for rest in lines[i + 1:]:
                if _HEADING.match(rest):
                    break
                section.append(rest)
            if any(same_url(u, s) for u in extract_urls("\n".join(section)) for s in sources):
                return True
    return False


def quality_findings(  # noqa: C901, PLR0912 - one flat list of gates, each two lines
    draft: Draft, brief: Brief, items: Iterable[FeedItem] = (), *, review: ReviewSettings | None = None,
    disclosure: DisclosureSettings | None = None,
) -> list[Finding]:
    """Every quality gate the draft fails, in a fixed order (empty: it may go to the model review)."""
    review = review or ReviewSettings()
    disclosure = disclosure or DisclosureSettings()
    out: list[Finding] = []
    if title_is_placeholder(draft.title):
        out.append(Finding("placeholder_title", f"the title {draft.title[:60]!r} names no subject",
                           "write a title that says what happened, naming the subject of the brief"))
    own = (disclosure.body, disclosure.bluesky) if disclosure.enabled else ()
    for field, text in (("title", draft.title), ("description", draft.description), ("body", draft.body_markdown),
                        ("bsky_text", draft.bsky_text)):
        for line in own:  # our own disclosure talks about the article on purpose
            text = text.replace(line.strip(), " ")
        echoed = echoes_prompt(text)
        if echoed:
            out.append(Finding("prompt_echo", f"the {field} repeats instructions or talks about itself ({echoed!r})",
                               "write only the article itself, never about the request or its format"))
            break
    body_prose = prose(draft.body_markdown, disclosure.body if disclosure.enabled else "")
    n_words, n_sentences = len(words(body_prose)), len(sentences(body_prose))
    if n_words < review.min_words or n_sentences < review.min_sentences:
        out.append(Finding("too_short", f"the body has {n_words} words in {n_sentences} sentences; at least "
                                        f"{review.min_words} words and {review.min_sentences} sentences are needed",
                           f"write at least {review.min_sentences} full sentences, one paragraph per key point"))
    html = sorted({m.group(0)[:20] for m in _HTML_TAG.finditer(_CODE.sub(" ", draft.body_markdown))})
    if html:
        out.append(Finding("raw_html", "the body contains HTML: " + ", ".join(html[:4]),
                           "write plain Markdown: '#' headings, no HTML tags"))
    if brief.sources and not has_sources_section(draft.body_markdown, brief.sources):
        out.append(Finding("no_sources", "the body has no Sources section linking the brief's sources",
                           "end the article with a '## Sources' list of links to the sources"))
    coverage, missed = key_point_coverage(brief, body_prose)
    if coverage < review.min_key_point_coverage:
        out.append(Finding(
            "key_points_missed",
            f"covers {coverage:.0%} of the brief's key points (at least {review.min_key_point_coverage:.0%} needed); "
            "missing: " + "; ".join(m[:60] for m in missed[:3]),
            "make each key point of the brief in its own paragraph: " + "; ".join(m[:80] for m in missed[:3])))
    labels = bare_labels(draft.body_markdown)
    if labels:
        out.append(Finding("bare_link_label", "links labelled only with a host or URL: " + ", ".join(labels[:3]),
                           "label each link with what the source says, e.g. [the release notes](url)"))
    feed_tags = list(dict.fromkeys(t for item in items for t in item.tags))
    if feed_tags and not draft.tags:
        out.append(Finding("missing_tags", "the draft has no tags though the feed gives " + ", ".join(feed_tags[:4]),
                           "end the article with the line 'Tags: " + ", ".join(feed_tags[:4]) + "'"))
    if disclosure.enabled:
        missing = [name for name, text, line in (("body", draft.body_markdown, disclosure.body),
                                                  ("bsky_text", draft.bsky_text, disclosure.bluesky))
                   if " ".join(line.split()) not in " ".join(text.split())]
        if missing:
            out.append(Finding("no_disclosure", "the AI disclosure is missing from the " + " and ".join(missing),
                               "keep the AI disclosure line the writer adds"))
    return out
