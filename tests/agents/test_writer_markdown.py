"""Writer: the model answers plain Markdown, parsed into the typed Draft; one repair call when the shape is wrong."""

from __future__ import annotations

import pytest

from agents.llm.errors import StructuredOutputError
from agents.text import normalise_tags
from agents.writer import Writer, WriterOutput, parse_article
from tests.fakes.scripted_llm import SOURCE, ScriptedLLM, sample_brief, writer_reply

ARTICLE = f"""# Rust 2026: faster builds

Rust's new edition cuts compile times ([announcement]({SOURCE})).

## Why it matters

Less waiting.

Tags: rust, Programming, #compilers
"""


async def write(*replies, **kw):
    llm = ScriptedLLM().enqueue("writer", *replies)
    draft = await Writer(llm).draft(sample_brief(), task_id="t1", cycle_id="c1", **kw)
    return draft, llm


async def test_a_markdown_reply_becomes_a_draft_with_one_call_and_no_schema():
    draft, llm = await write(ARTICLE)
    [call] = llm.calls("writer")
    assert call.response_model is None and (call.task_id, call.cycle_id) == ("t1", "c1")
    assert "Tags:" in call.messages[0]["content"] and "# " in call.messages[0]["content"]
    assert draft.title == "Rust 2026: faster builds"
    assert draft.tags == ("rust", "programming", "compilers")
    assert draft.body_markdown.startswith("Rust's new edition") and "## Why it matters" in draft.body_markdown
    assert "Tags:" not in draft.body_markdown and "# Rust 2026" not in draft.body_markdown
    assert draft.description == "What changes for everyday Rust users"  # from the brief's angle


@pytest.mark.parametrize(
    ("reply", "title", "tags"),
    [
        (f"```markdown\n{ARTICLE}```", "Rust 2026: faster builds", ("rust", "programming", "compilers")),
        (f"\n\n## Rust 2026 ##\nBody [a]({SOURCE}).", "Rust 2026", ()),  # any heading level 1-3, no tags line
        (f"**Title:** Rust 2026\n\nBody [a]({SOURCE}).\n\n**Tags:** rust python", "Rust 2026", ("rust", "python")),
        (f"Rust 2026 is here\n\nBody [a]({SOURCE}).\nTags: rust", "Rust 2026 is here", ("rust",)),  # bare short title
        (f"# Rust 2026\nBody.\nTags: rust\n\n## Sources\n- [a]({SOURCE})", "Rust 2026", ("rust",)),  # tags not last
    ],
)
def test_markdown_shapes_a_model_writes_are_read(reply, title, tags):
    out, errors = parse_article(reply)
    assert errors == [] and out is not None
    assert out.title == title and normalise_tags(out.tags) == tags
    assert out.body_markdown.strip() and "Tags" not in out.body_markdown and not out.body_markdown.startswith("#")


def test_a_json_reply_is_still_heard():
    out, errors = parse_article('```json\n{"title": "T", "body_markdown": "Line one\nline two", "tags": ["x"]}\n```')
    assert errors == [] and out == WriterOutput(title="T", body_markdown="Line one\nline two", tags=["x"])


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("# Only a title\n\nTags: rust", "no article text"),
        ("This is a long first sentence of an article that never had a title line at all. It goes on.", "title"),
        ('{"answer": "ok"}', "title"),
    ],
)
def test_wrong_shapes_are_reported(reply, error):
    out, errors = parse_article(reply)
    assert out is None and any(error in e for e in errors), errors


async def test_a_wrong_shape_gets_one_repair_call_that_shows_what_was_wrong():
    bad = "Here is an article about Rust that forgot its title. It is long enough to be prose."
    draft, llm = await write(bad, writer_reply())
    first, second = llm.calls("writer")
    assert first.response_model is None and second.response_model is WriterOutput
    assert second.messages[:2] == first.messages
    assert second.messages[2] == {"role": "assistant", "content": bad}
    assert "not the title" in second.messages[3]["content"]
    assert (second.task_id, second.cycle_id) == ("t1", "c1")
    assert draft.title == writer_reply()["title"]


async def test_still_no_article_after_the_repair_is_a_structured_output_error_with_both_costs():
    llm = ScriptedLLM(cost=200_000).enqueue("writer", "no title here at all, just one rambling sentence.",
                                            WriterOutput(title="T", body_markdown="   "))
    with pytest.raises(StructuredOutputError) as err:
        await Writer(llm).draft(sample_brief(), task_id="t9", cycle_id="c9")
    assert len(llm.calls("writer")) == 2
    assert err.value.cost == 2 * 200_000 and err.value.task_id == "t9"


async def test_a_revision_is_markdown_too_and_carries_the_fixes():
    draft, llm = await write(ARTICLE, fixes=["shorten the title"])
    [call] = llm.calls("writer")
    assert call.response_model is None and "- shorten the title" in call.messages[1]["content"]
    assert draft.title == "Rust 2026: faster builds"


async def test_missing_citations_are_appended_to_a_markdown_body():
    draft, _ = await write("# Rust 2026\n\nNo links here.\n\nTags: rust")
    assert SOURCE in draft.body_markdown and "## Sources" in draft.body_markdown
