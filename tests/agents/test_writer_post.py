"""Writer post-processing: the Bluesky text is whole sentences, the AI disclosure is in both texts, sources say
what they support, and the feed's tags named in a critic's fix are used."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.quality import bare_labels
from agents.text import BSKY_MAX_GRAPHEMES, BSKY_TEXT_MAX, graphemes, strip_hashtags
from agents.writer import Writer, WriterOutput, bsky_post, finish_draft
from config.settings import DisclosureSettings
from tests.fakes.scripted_llm import SOURCE, ScriptedLLM, article_body, sample_brief, writer_reply

DISCLOSURE = DisclosureSettings()
LINK = "https://dev.to/someone/" + "a" * 75  # with "\n\n", the BSKY_LINK_RESERVE the publisher adds it in


def prose_of(post: str, disclosure: str = DISCLOSURE.bluesky) -> str:
    """The sentences of a Bluesky text: hashtags and the disclosure out."""
    return strip_hashtags(post.replace(disclosure, "")).strip()


words = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd", "So")), min_size=1, max_size=14)
sentence = st.lists(words, min_size=4, max_size=40).map(lambda ws: " ".join(ws).capitalize() + ".")


@settings(max_examples=60, deadline=None)
@given(st.lists(sentence, min_size=1, max_size=6), st.lists(st.sampled_from(["rust", "python", "web", "ai"]),
                                                            max_size=4, unique=True))
def test_bluesky_text_ends_at_a_sentence_boundary_within_300_graphemes(paragraph, tags):
    out = WriterOutput(title="Rust 2026 edition cuts compile times", body_markdown=" ".join(paragraph), tags=tags)
    post = finish_draft(out, sample_brief()).bsky_text
    assert graphemes(post) <= BSKY_TEXT_MAX
    assert graphemes(f"{post}\n\n{LINK}") <= BSKY_MAX_GRAPHEMES
    assert post.endswith(DISCLOSURE.bluesky)
    assert re.search(r"[.!?]$", prose_of(post)), post
    assert "…" not in post  # never a cut-off sentence


def test_bluesky_text_takes_whole_sentences_in_order_and_never_the_title():
    post = bsky_post(["First point is short.", "Second point is short too.", "x " * 150 + "."], ["rust"],
                     fallback="A title", disclosure="Written by an AI agent.")
    assert post == "First point is short. Second point is short too. #rust\n\nWritten by an AI agent."
    # no sentence fits: the title closed as a sentence, the hashtags dropped first
    only_long = bsky_post(["y " * 150 + "."], ["rust"], fallback="Rust 2026 edition cuts compile times",
                          disclosure="")
    assert only_long == "Rust 2026 edition cuts compile times."


async def test_disclosure_is_in_the_body_and_the_post_and_can_be_turned_off():
    llm = ScriptedLLM().enqueue("writer", writer_reply(), writer_reply())
    on = await Writer(llm).draft(sample_brief(), task_id="t", cycle_id="c")
    assert DISCLOSURE.body in on.body_markdown and on.body_markdown.index(DISCLOSURE.body) < on.body_markdown.index(
        "## Sources")
    assert on.bsky_text.endswith(DISCLOSURE.bluesky)
    custom = DisclosureSettings(enabled=False, body="unused", bluesky="unused")
    off = await Writer(llm, disclosure=custom).draft(sample_brief(), task_id="t", cycle_id="c")
    assert DISCLOSURE.body not in off.body_markdown and DISCLOSURE.bluesky not in off.bsky_text
    assert on.body_markdown.count(DISCLOSURE.body) == 1


async def test_a_revision_keeps_one_disclosure_even_when_the_model_copies_it():
    llm = ScriptedLLM().enqueue("writer", writer_reply(body_markdown=article_body() + "\n\n" + DISCLOSURE.body))
    draft = await Writer(llm).draft(sample_brief(), task_id="t", cycle_id="c")
    assert draft.body_markdown.count(DISCLOSURE.body) == 1


def test_sources_are_labelled_with_what_they_support_never_a_bare_host():
    brief = sample_brief((SOURCE, "https://lwn.net/Articles/998877/"))
    body = f"Compile times dropped by a fifth ([news.example.org]({SOURCE}))."
    draft = finish_draft(WriterOutput(title="Rust 2026", body_markdown=body), brief)
    assert bare_labels(draft.body_markdown) == []
    assert f"[Compile times dropped by a fifth]({SOURCE})" in draft.body_markdown


async def test_the_feed_tags_named_in_a_critic_fix_are_used_when_the_model_gives_none():
    llm = ScriptedLLM().enqueue("writer", writer_reply(tags=[]))
    draft = await Writer(llm).draft(sample_brief(), task_id="t", cycle_id="c",
                                    fixes=["end the article with the line 'Tags: rust, compilers'"])
    assert draft.tags == ("rust", "compilers")


def test_a_label_opening_the_title_is_dropped_and_the_subject_kept():
    for raw, kept in (("Data brief: Near-duplicate pages with MinHash", "Near-duplicate pages with MinHash"),
                      ("Data brief on pip-audit and SBOMs", "pip-audit and SBOMs"),
                      ("Article: Rust 2026 edition", "Rust 2026 edition"),
                      ("Title - Rust 2026 edition", "Rust 2026 edition"),
                      ("Articles of faith in Rust 2026", "Articles of faith in Rust 2026")):
        assert finish_draft(WriterOutput(title=raw, body_markdown=article_body()), sample_brief()).title == kept, raw
    empty = finish_draft(WriterOutput(title="Data brief:", body_markdown="x"), sample_brief())
    assert empty.title == "Rust 2026 edition"  # nothing left: the brief's topic
