"""Writing from the brief's key points, section by section, under a grammar.

On an endpoint that enforces a JSON schema as a grammar (the embedded llama.cpp server turns
response_format's schema into one), the writer asks for the article as sections, not free Markdown:

    brief (n key points) ── sections_model() ──► schema: title  20-100 characters, no markup
                                                        paragraphs  exactly max(n, 3) (at most 6), each
                                                                    3 sentences of 40 characters up to
                                                                    what max_tokens leaves room for (at
                                                                    most 220), no HTML, headings, links,
                                                                    emphasis or quotes
                                                        tags   1 to 4 lowercase words
    reply ── sections_article() ──► WriterOutput: paragraph i makes key point i; one that does not
                                    (its claim's content words absent) opens with the claim, linked
                                    to its source; sentences echoing the prompt dropped; a placeholder
                                    title replaced by the brief's topic

So the shapes a small model gets wrong in free text (no title, a body of one line, raw HTML, an echo
of the reply format) cannot be produced; what the grammar cannot judge (a placeholder title, prose
that says nothing) is left to the critic's gates (agents/quality.py).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from agents.messages import Brief
from agents.quality import covers, echoes_prompt, title_is_placeholder

_SENTENCE_END = re.compile(r"(?<=[.!?]) ")
MIN_SECTIONS, MAX_SECTIONS = 3, 6
SENTENCES = 3  # per paragraph
SENTENCE_MIN, SENTENCE_MAX = 40, 220  # characters
# The grammar's longest reply must fit in max_tokens, or the reply is cut off and is not JSON. English prose
# averages about 4 characters a token, but a small model's revision can write far denser text (3 per token
# overran 400 tokens in the demo): size for 2, which only text of mostly one-character tokens could beat.
CHARS_PER_TOKEN = 2
OVERHEAD_CHARS = 260  # JSON keys, quotes and commas, the title (up to 100), the tags (up to 4 x 20)
_PLAIN = r"[^\n<>#{}|*_`\[\]\\\"]"  # no HTML, heading, link, table or emphasis characters (nor quotes)
# In prose a full stop only ends a sentence: no host name ("Dev.to") a renderer would link. (A group allowing
# "." before a digit crashed llama.cpp's grammar sampler at these repetition counts.)
_PROSE = r"[^\n<>#{}|*_`\[\]\\\".!?]"
TITLE = rf"^[A-Z0-9]{_PLAIN}{{19,99}}$"
TAG = r"^[a-z0-9]{2,20}$"


def sentence_max(n: int, max_tokens: int | None) -> int:
    """The longest sentence the grammar allows, so that n paragraphs at their longest fit in max_tokens."""
    if not max_tokens:
        return SENTENCE_MAX
    room = (max_tokens * CHARS_PER_TOKEN - OVERHEAD_CHARS) // (n * SENTENCES) - 2
    return max(SENTENCE_MIN + 10, min(SENTENCE_MAX, room))


def paragraph_pattern(longest: int) -> str:
    """A paragraph: SENTENCES plain sentences of SENTENCE_MIN to `longest` characters, one space apart."""
    sentence = rf"[A-Z0-9]{_PROSE}{{{SENTENCE_MIN - 2},{longest - 2}}}[.!?]"
    return rf"^{sentence}( {sentence}){{{SENTENCES - 1}}}$"


class Sections(BaseModel):
    """The base of every per-brief sections model (its fields are set by `sections_model`)."""

    model_config = ConfigDict(extra="ignore")


def section_count(brief: Brief) -> int:
    """How many paragraphs the article has: one per key point, at least MIN_SECTIONS, at most MAX_SECTIONS."""
    return min(max(len(brief.key_points), MIN_SECTIONS), MAX_SECTIONS)


def sections_model(brief: Brief, max_tokens: int | None = None) -> type[Sections]:
    """The response model (and so the grammar) of one brief's article, its longest reply within max_tokens."""
    n = section_count(brief)
    paragraph = Annotated[str, StringConstraints(pattern=paragraph_pattern(sentence_max(n, max_tokens)))]
    return create_model(
        "Article", __base__=Sections,
        title=(Annotated[str, StringConstraints(pattern=TITLE)], ...),
        paragraphs=(Annotated[list[paragraph], Field(min_length=n, max_length=n)], ...),
        tags=(Annotated[list[Annotated[str, StringConstraints(pattern=TAG)]], Field(min_length=1, max_length=4)], ...),
    )


def sections_article(parsed: Sections, brief: Brief) -> tuple[str, str, list[str]]:
    """(title, body Markdown, tags) from a sections reply.

    A sentence that talks about the request instead of the subject (an echo of the prompt) is dropped;
    a paragraph missing its key point opens with it; a placeholder title gives way to the brief's topic.
    What is left is judged by the critic as any draft is.
    """
    paragraphs = []
    for i, text in enumerate(getattr(parsed, "paragraphs", [])):
        text = " ".join(s for s in _SENTENCE_END.split(" ".join(text.split())) if not echoes_prompt(s))
        kp = brief.key_points[i] if i < len(brief.key_points) else None
        if kp is not None and not covers(kp.claim, text):
            text = f"[{kp.claim.strip().rstrip('.')}]({kp.source_url}). {text}"
        paragraphs.append(text)
    title = getattr(parsed, "title", "")
    if (title_is_placeholder(title) or echoes_prompt(title)) and not title_is_placeholder(brief.topic):
        title = brief.topic
    return title, "\n\n".join(p for p in paragraphs if p), list(getattr(parsed, "tags", []))
