"""Differential test of the critic's link policy against rendering: it never allows what the page links off-source.

The corpus (tests/agents/link_corpus.py) is generated; the oracle renders each snippet with markdown-it-py
as shipped, parses the HTML with lxml and resolves links with urllib (a second path through parsing and
resolution). Hypothesis then mutates spellings (case, C0/tab insertions, entity and percent encodings,
slashes) and wraps them in random contexts, with the same property.
"""

from __future__ import annotations

import html

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agents.critic import link_findings, link_policy
from agents.messages import Draft
from tests.agents.link_corpus import (
    ALLOWED_SPELLINGS,
    CONTEXTS,
    FOREIGN_SPELLINGS,
    PAGE,
    PLATFORM,
    SOURCE,
    corpus,
    oracle_off_source,
    rendered_links,
)
from tests.fakes.scripted_llm import sample_brief

CORPUS = corpus()
BRIEF = sample_brief((SOURCE,))
POLICY = link_policy(BRIEF, article_url=PAGE, platforms=(PLATFORM, "https://bsky.app"))


def critic_refuses(markdown: str) -> list[str]:
    """The critic's link problems for an article whose body is `markdown`."""
    draft = Draft(title="t", body_markdown=markdown, tags=("rust",), description="d", bsky_text="b")
    return link_findings(draft, POLICY)[0]


def test_the_corpus_is_large_and_not_vacuous():
    assert len(CORPUS) >= 200
    off = [s for s in CORPUS if oracle_off_source(s.markdown)]
    assert len(off) >= 600  # the oracle sees most foreign spellings as links ...
    followed = [s for s in CORPUS if s.written_allowed and rendered_links(s.markdown)]
    assert len(followed) >= 150  # ... and allowed ones render as links too


@pytest.mark.parametrize("snippet", CORPUS, ids=[s.id for s in CORPUS])
def test_critic_never_allows_what_the_rendered_page_links_off_source(snippet):
    off = oracle_off_source(snippet.markdown)
    if off:
        assert critic_refuses(snippet.markdown), f"rendered links {off} off-source, critic allowed"


def test_written_allowed_links_pass_where_the_oracle_agrees():
    # Allowed spellings in link contexts pass (no false refusal for what the writer writes).
    for context in ("[text]({u})", "[text](<{u}>)", "<{u}>", '<a href="{u}">a</a>', "[text][r]\n\n[r]: {u}"):
        for u in ALLOWED_SPELLINGS:
            md = context.format(u=u)
            if not oracle_off_source(md) and u.startswith(("https://src", "https://dev.to", "/")):
                assert not critic_refuses(md), md


def _entity(c: str, form: int) -> str:
    return (f"&#{ord(c)};", f"&#x{ord(c):X};", f"&#x{ord(c):x}", html.escape(c))[form]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A foreign or allowed spelling, mutated character by character the ways browsers forgive."""
    url = draw(st.sampled_from(FOREIGN_SPELLINGS + ALLOWED_SPELLINGS))
    out = []
    for c in url:
        op = draw(st.integers(0, 9))
        if op == 0 and c.isalpha():
            out.append(c.swapcase())
        elif op == 1:
            out.append(_entity(c, draw(st.integers(0, 3))))
        elif op == 2 and c == "/":
            out.append(draw(st.sampled_from(["\\", "//", "/\\", "%2F"])))
        elif op == 3:
            out.append(draw(st.sampled_from(["\t", "\n", "\x00", " ", "\x0b"])) + c)
        elif op == 4 and c == ":":
            out.append(draw(st.sampled_from(["&colon;", "&#58;", "%3A", ":"])))
        else:
            out.append(c)
    prefix = draw(st.sampled_from(["", " ", "\x01", "\t", "&#x20;"]))
    return prefix + "".join(out)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(url=mutated(), context=st.sampled_from(CONTEXTS), lead=st.sampled_from(["", "Intro.\n\n", "> quote "]))
@example(url="https:\\\\evil.example/x", context='<a href="{u}">a</a>', lead="")
def test_property_mutated_spellings_never_pass_off_source(url, context, lead):
    markdown = lead + context.format(u=url)
    off = oracle_off_source(markdown)
    if off:
        assert critic_refuses(markdown), f"rendered links {off} off-source, critic allowed {markdown!r}"


# Fragments that, strung together at random, make nested, unclosed and half-quoted Markdown/HTML/Liquid.
FRAGMENTS = (
    "<a href=", "<img src=", "<img srcset=", "<p style=", "url(", ")", '"', "'", "<", ">", "/>", "</a>", "[", "]",
    "](", "![", "]:", "[r]", "\n", "\n\n", " ", "\t", "https:", "http:", "//", "\\", "/", "&#x3A;", "&colon;", "&#47;",
    "evil.example", "EVIL.example", "src.example/post", "dev.to", "@", "javascript:", "{%", "%}", " embed ", " github ",
    "`", "<!--", "-->", "<https://", "www.", "#", "?", "x",
)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=24).map("".join))
def test_property_random_markup_never_passes_off_source(markdown):
    off = oracle_off_source(markdown)
    if off:
        assert critic_refuses(markdown), f"rendered links {off} off-source, critic allowed {markdown!r}"
