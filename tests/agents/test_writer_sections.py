"""The writer on a grammar-enforcing endpoint: one call under the brief's sections schema (agents/sections.py)."""

from __future__ import annotations

import json

import pytest
from llama_cpp import llama_grammar
from pydantic import ValidationError

from agents.critic import check_draft
from agents.llm.structured import compact_schema
from agents.messages import Brief, KeyPoint
from agents.sections import (
    CHARS_PER_TOKEN,
    MAX_SECTIONS,
    MIN_SECTIONS,
    OVERHEAD_CHARS,
    SENTENCE_MIN,
    SENTENCES,
    section_count,
    sections_model,
    sentence_max,
)
from agents.writer import Writer
from tests.fakes.scripted_llm import SOURCE, ScriptedLLM, sample_brief, sample_item

PARAGRAPHS = [
    "Rust's 2026 edition is out, and compile times dropped by a fifth for most projects in the survey. "
    "The release notes credit a reworked incremental cache that rebuilds fewer crates after an edit. "
    "Large workspaces gain the most, while small crates still finish sooner than before.",
    "Upgrading is a one-line change in the manifest, and code on the old edition keeps compiling. "
    "The project suggests trying the new edition in continuous integration before local builds. "
    "Teams that pin toolchains can move when their own release calendar allows it.",
    "Faster feedback from the compiler is the change everyday Rust users will notice first. "
    "Shorter edit and test loops make refactoring large codebases less of a chore for everyone. "
    "The maintainers plan further work on parallel code generation in later releases.",
]


def reply(**over) -> dict:
    return {"title": "Rust 2026 edition cuts compile times by a fifth", "paragraphs": PARAGRAPHS, "tags": ["rust"],
            **over}


def test_the_schema_is_one_llama_cpp_turns_into_a_grammar():
    schema = compact_schema(sections_model(sample_brief()).model_json_schema())
    assert schema["properties"]["paragraphs"]["minItems"] == MIN_SECTIONS
    assert llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False) is not None


def test_one_paragraph_per_key_point_within_bounds():
    points = tuple(KeyPoint(claim=f"Point {i} about the compiler", source_url=SOURCE) for i in range(9))
    assert section_count(Brief(topic="t", angle="a", key_points=points[:4], sources=(SOURCE,))) == 4
    assert section_count(Brief(topic="t", angle="a", key_points=points, sources=(SOURCE,))) == MAX_SECTIONS
    assert section_count(Brief(topic="t", angle="a")) == MIN_SECTIONS


@pytest.mark.parametrize("over", [
    {"paragraphs": ["<h1>Data Brief</h1>", *PARAGRAPHS[1:]]},
    {"paragraphs": PARAGRAPHS[:2]},  # one section short
    {"paragraphs": [p.replace("compiler", "[compiler](https://evil.example)") for p in PARAGRAPHS]},
    {"title": "Title"},  # too short to name anything
    {"title": "# Your article"},
    {"tags": []},
])
def test_the_schema_refuses_the_free_text_failures(over):
    with pytest.raises(ValidationError):
        sections_model(sample_brief()).model_validate(reply(**over))


async def test_a_sections_reply_becomes_an_article_over_the_quality_floor():
    llm = ScriptedLLM().enqueue("writer", reply())
    draft = await Writer(llm, structured=True).draft(sample_brief(), task_id="t", cycle_id="c")
    [call] = llm.calls("writer")
    assert call.response_model is not None and "paragraphs" in call.response_model.model_fields
    assert "one per key point" in call.messages[0]["content"]
    assert check_draft(draft, sample_brief(), [sample_item()]) == ([], [])
    assert draft.body_markdown.startswith(PARAGRAPHS[0])


async def test_a_paragraph_that_misses_its_key_point_opens_with_it_linked_to_its_source():
    other = "https://lwn.net/Articles/998877/"
    brief = Brief(topic="Rust 2026", angle="a", sources=(SOURCE, other), key_points=(
        KeyPoint(claim="Compile times dropped by a fifth", source_url=SOURCE),
        KeyPoint(claim="Cargo gained a parallel frontend scheduler", source_url=other)))
    llm = ScriptedLLM().enqueue("writer", reply())
    draft = await Writer(llm, structured=True).draft(brief, task_id="t", cycle_id="c")
    second = draft.body_markdown.split("\n\n")[1]
    assert second.startswith(f"[Cargo gained a parallel frontend scheduler]({other}). Upgrading")
    assert draft.body_markdown.startswith(PARAGRAPHS[0])  # the first already makes its point


def test_a_host_name_cannot_be_written_in_prose():
    model = sections_model(sample_brief())
    with pytest.raises(ValidationError):
        model.model_validate(reply(paragraphs=[p.replace("the manifest", "Dev.to") for p in PARAGRAPHS]))


async def test_echoed_sentences_are_dropped_and_a_placeholder_title_gives_way_to_the_topic():
    echo = "The research brief says what to write about in this article today. "
    llm = ScriptedLLM().enqueue("writer", reply(title="Data brief for the article",
                                                paragraphs=[echo + PARAGRAPHS[0].split(". ", 1)[1],
                                                            *PARAGRAPHS[1:]]))
    draft = await Writer(llm, structured=True).draft(sample_brief(), task_id="t", cycle_id="c")
    assert draft.title == sample_brief().topic
    assert "research brief" not in draft.body_markdown
    assert draft.body_markdown.startswith(f"[Compile times dropped by a fifth]({SOURCE}). The release notes")
    assert check_draft(draft, sample_brief(), [sample_item()]) == ([], [])


@pytest.mark.parametrize("n", range(MIN_SECTIONS, MAX_SECTIONS + 1))
@pytest.mark.parametrize("max_tokens", [400, 600, 1024, 2048])
def test_the_longest_reply_the_grammar_allows_fits_in_max_tokens(n: int, max_tokens: int) -> None:
    """A reply cut off at max_tokens is not JSON: the grammar must not allow one longer than the cap
    (at CHARS_PER_TOKEN), unless the floor on a sentence's length forces it (then it is said here)."""
    longest = sentence_max(n, max_tokens)
    paragraph = SENTENCES * longest + (SENTENCES - 1)
    reply = len('{"title": "", "paragraphs": [], "tags": []}') + 100 + n * (paragraph + 4) + 4 * (20 + 4)
    room = (max_tokens * CHARS_PER_TOKEN - OVERHEAD_CHARS) // (n * SENTENCES) - 2
    if room >= SENTENCE_MIN + 10:  # not held up by the floor on a sentence's length
        assert reply <= max_tokens * CHARS_PER_TOKEN, (longest, reply)
    else:
        assert longest == SENTENCE_MIN + 10
