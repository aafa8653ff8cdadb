"""The quality floor (agents/quality.py): each gate refuses its shape with its code, before any model review."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agents.critic import Critic, check_draft
from agents.messages import Brief, KeyPoint
from agents.quality import quality_findings, title_is_placeholder
from agents.text import BSKY_MAX_GRAPHEMES, graphemes
from agents.writer import WriterOutput, finish_draft
from config.settings import DisclosureSettings, ReviewSettings
from tests.fakes.scripted_llm import SOURCE, ScriptedLLM, sample_brief, sample_draft, sample_item

DISCLOSURE = DisclosureSettings()


def codes(draft, brief=None, items=(), **kw) -> list[str]:
    """The codes of the quality findings (the critic's other checks aside)."""
    return [f.code for f in quality_findings(draft, brief or sample_brief(), items, **kw)]


def with_prose(text: str) -> str:
    """The good draft's body with `text` added to its prose."""
    return sample_draft().body_markdown.replace(DISCLOSURE.body, f"{text}\n\n{DISCLOSURE.body}", 1)


def test_a_good_draft_passes_every_gate():
    draft = sample_draft()
    assert codes(draft, items=[sample_item()]) == []
    assert check_draft(draft, sample_brief(), [sample_item()]) == ([], [])


@pytest.mark.parametrize("title", ["Data brief", "Your article in Markdown", "Title", "Untitled", "TITLE:",
                                   "Article title", "Here is the article in JSON format", "[Title]", "<title>",
                                   "Blog post", "Research Brief"])
def test_gate_placeholder_title(title):
    found = codes(sample_draft(title=title))
    assert found[0] == "placeholder_title" and set(found) <= {"placeholder_title", "prompt_echo"}


def test_real_titles_naming_a_format_are_not_placeholders():
    for title in ("JSON Schema 2026 adds conditional types", "Markdown tables land in the Rust docs",
                  "The Rust 2026 edition: faster builds for everyone", "SQLite 3.45 adds a binary JSON format",
                  "Config files as YAML in the new release"):
        assert not title_is_placeholder(title), title


@pytest.mark.parametrize("text", [
    "Your article is in JSON format, as requested.",
    "Here is the article you asked for, about the release.",
    "Use only the brief's facts. Write no links and no list of sources for readers.",  # a run of the writer's own prompt
    "topic: Rust 2026 edition",
])
def test_gate_prompt_echo(text):
    assert codes(sample_draft(body_markdown=with_prose(text))) == ["prompt_echo"]


def test_an_article_about_a_format_is_not_an_echo():
    text = "SQLite 3.45 stores documents in JSON format on disk, and exports them as Markdown tables too."
    assert codes(sample_draft(body_markdown=with_prose(text))) == []


def test_prompt_echo_in_the_title_or_post_counts_and_code_samples_do_not():
    assert "prompt_echo" in codes(sample_draft(description="Your article is in Markdown below."))
    assert codes(sample_draft(body_markdown=with_prose("```python\n>>> import json\n```"))) == []


def test_gate_too_short_counts_words_and_sentences():
    short = sample_draft(body_markdown=with_prose("").replace(
        "The release notes say", "The notes say", 1))
    assert codes(short, review=ReviewSettings(min_words=500)) == ["too_short"]
    assert codes(short, review=ReviewSettings(min_words=0, min_sentences=40)) == ["too_short"]
    assert codes(short, review=ReviewSettings(min_words=0, min_sentences=0)) == []
    # the sources list and the disclosure are not prose: a body of only those is too short
    tail = sample_draft().body_markdown[sample_draft().body_markdown.index(DISCLOSURE.body):]
    assert "too_short" in codes(sample_draft(body_markdown=f"Compile times dropped by a fifth.\n\n{tail}"))


def test_gate_raw_html():
    assert codes(sample_draft(body_markdown=with_prose("<h1>Data Brief</h1>"))) == ["raw_html"]
    assert codes(sample_draft(body_markdown=with_prose("Use `<div>` in code, and <https://x.example> autolinks."))) \
        == []


def test_gate_no_sources():
    body = sample_draft().body_markdown
    assert codes(sample_draft(body_markdown=body[: body.index("## Sources")])) == ["no_sources"]
    # a Sources heading that links elsewhere is not one
    other = body.replace(f"]({SOURCE})\n", "](https://elsewhere.example/x)\n")
    assert codes(sample_draft(body_markdown=other)) == ["no_sources"]


def test_gate_key_points_missed():
    brief = Brief(topic="Rust 2026 edition", angle="What changes", sources=(SOURCE,), key_points=(
        KeyPoint(claim="Compile times dropped by a fifth", source_url=SOURCE),
        KeyPoint(claim="Cargo gains a parallel frontend scheduler", source_url=SOURCE),
        KeyPoint(claim="Windows linker defaults switched to lld", source_url=SOURCE),
    ))
    draft = sample_draft(brief)
    assert codes(draft, brief) == ["key_points_missed"]  # one point of three covered
    assert codes(draft, brief, review=ReviewSettings(min_key_point_coverage=0.3)) == []
    covered = with_prose("Cargo now runs a parallel frontend scheduler. On Windows the linker default "
                         "switched to lld for new projects.")
    assert codes(sample_draft(brief, body_markdown=covered), brief) == []


def test_gate_missing_tags_only_when_the_feed_gives_them():
    untagged = sample_draft(tags=())
    assert codes(untagged, items=[sample_item(tags=("rust", "compilers"))]) == ["missing_tags"]
    assert codes(untagged, items=[sample_item(tags=())]) == []
    [finding] = quality_findings(untagged, sample_brief(), [sample_item(tags=("rust",))])
    assert "'Tags: rust'" in finding.fix


def test_gate_bare_link_label():
    for label in ("news.example.org", "https://news.example.org/rust-2026", "www.example.com", "127.0.0.1:8799", ""):
        body = with_prose(f"More in [{label}]({SOURCE}).")
        assert codes(sample_draft(body_markdown=body)) == ["bare_link_label"], label


def test_gate_no_disclosure_and_turned_off():
    body = sample_draft().body_markdown.replace(DISCLOSURE.body, "")
    assert codes(sample_draft(body_markdown=body)) == ["no_disclosure"]
    assert codes(sample_draft(bsky_text="Compile times dropped by a fifth. #rust")) == ["no_disclosure"]
    off = DisclosureSettings(enabled=False)
    assert codes(sample_draft(body_markdown=body, bsky_text="Compile times dropped by a fifth."), disclosure=off) == []


def test_review_settings_refuse_negative_floors():
    for field in ("min_words", "min_sentences", "min_key_point_coverage"):
        with pytest.raises(ValidationError):
            ReviewSettings(**{field: -1})
    with pytest.raises(ValidationError):
        ReviewSettings(min_key_point_coverage=1.5)
    with pytest.raises(ValidationError):
        DisclosureSettings(bluesky="")


async def test_the_issue_drafts_are_refused_with_codes_before_any_model_call():
    """At default settings the embedded critic scored these 10/10; now code refuses them and the model is not asked."""
    llm = ScriptedLLM().enqueue("critic", {"score": 10})
    data_brief = finish_draft(WriterOutput(title="Data brief", body_markdown="<h1>Data Brief</h1>"), sample_brief())
    json_echo = finish_draft(WriterOutput(title="Your article in Markdown",
                                          body_markdown="Your article is in JSON format, with a title and a body."),
                             sample_brief())
    for draft, expected in ((data_brief, {"placeholder_title", "raw_html", "too_short"}),
                            (json_echo, {"placeholder_title", "prompt_echo", "too_short"})):
        review = await Critic(llm).review(draft, sample_brief(), items=[sample_item()], task_id="t", cycle_id="c")
        assert not review.approved and review.score == 0
        found = {p.split(":", 1)[0] for p in review.problems}
        assert expected <= found, review.problems
        assert all(re.match(r"^[a-z_]+: \S", p) for p in review.problems)  # "code: message" everywhere
    assert llm.history == []


async def test_a_good_draft_still_goes_to_the_model_and_its_problems_carry_a_code():
    llm = ScriptedLLM().enqueue("critic", {"score": 3, "problems": ["claims 50%"], "fixes": ["say a fifth"]})
    review = await Critic(llm).review(sample_draft(), sample_brief(), items=[sample_item()], task_id="t", cycle_id="c")
    assert review.problems == ("review: claims 50%",) and len(llm.history) == 1


# -- properties ------------------------------------------------------------------------------------

TERMS = ("compiler", "cache", "kernel", "driver", "scheduler", "runtime", "crate", "parser", "latency", "memory",
         "network", "storage", "browser", "database", "index", "linker", "allocator", "sandbox", "firmware", "shader")
FILLER = ("Teams that upgrade early report fewer surprises in their continuous integration pipelines. "
          "The maintainers plan to publish migration notes alongside the next point release. "
          "Older versions keep receiving security fixes for another year, so nobody has to rush.")
CONTEXT = ("Benchmarks from the project's own test machines back the numbers, though real workloads vary. "
           "Readers who maintain libraries should check the changelog for deprecations before they bump versions. "
           "Feedback goes to the public issue tracker, where the maintainers answer questions every week.")

claims = st.lists(st.sampled_from(TERMS), min_size=3, max_size=6, unique=True).map(
    lambda ws: f"The {ws[0]} {ws[1]} now handles {' and '.join(ws[2:])} workloads")


@st.composite
def briefs(draw) -> Brief:
    n = draw(st.integers(1, 5))
    sources = tuple(f"https://news{i}.example.org/item-{i}" for i in range(n))
    points = tuple(KeyPoint(claim=draw(claims), source_url=s) for s in sources)
    return Brief(topic=points[0].claim[:60], angle="Why it matters to developers.", key_points=points, sources=sources)


def article_from(brief: Brief) -> WriterOutput:
    """An article written from the brief's key points, one paragraph each, citing its source, plus context."""
    paras = [f"{kp.claim}, according to [the announcement]({kp.source_url}). "
             "This matters for daily work, since builds and releases depend on it." for kp in brief.key_points]
    words = brief.key_points[0].claim.split()
    return WriterOutput(title=" ".join(words[1:6]).capitalize() + " update lands",
                        body_markdown="\n\n".join([*paras, FILLER, CONTEXT]), tags=["news"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(briefs())
def test_property_a_draft_from_the_key_points_with_sources_passes(brief):
    draft = finish_draft(article_from(brief), brief)
    assert codes(draft, brief, items=[sample_item(tags=("news",))]) == [], draft.body_markdown
    post = draft.bsky_text + "\n\nhttps://dev.to/someone/" + "a" * 70
    assert graphemes(post) <= BSKY_MAX_GRAPHEMES


PLACEHOLDERS = ("data brief", "your article in markdown", "title", "untitled", "article", "blog post", "draft",
                "summary", "research brief", "your title here", "markdown", "json", "new post", "technical article",
                "article title", "your article in json format", "the article", "dev.to article", "post title")


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(PLACEHOLDERS), st.sampled_from([str.lower, str.title, str.upper, str.capitalize]),
       st.sampled_from(["{}", "{}.", "{}:", "**{}**", "Title: {}", "{} here", "# {}", "{}!"]))
def test_property_a_placeholder_title_is_refused(phrase, case, frame):
    title = frame.format(case(phrase)).lstrip("# ")
    assert "placeholder_title" in codes(sample_draft(title=title))
