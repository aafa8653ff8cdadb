"""Typed messages between agents, stored as JSON with their task."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeedItem(Message):
    """One new item from a feed: untrusted data, never instructions."""

    feed_url: str
    feed_name: str | None = None
    url: str  # canonicalised
    title: str
    summary: str = ""
    content: str = ""  # extracted main text when fetched, size-capped
    published: datetime | None = None
    content_hash: str
    tags: tuple[str, ...] = ()


class KeyPoint(Message):
    claim: str
    source_url: str


class Note(Message):
    """One item's material as the writer reads it when it researches and writes in one call (untrusted text)."""

    url: str
    title: str
    text: str  # summary (when the article does not already contain it) and article, one line, capped


class Brief(Message):
    """Research output: what to write about and the sourced points to make.

    A brief made for the one-call writer (research.brief = "writer") carries the items' `notes` and no key
    points yet; the writer reads the notes, cites them as [n], and its cited sentences become the key points.
    """

    topic: str
    angle: str
    key_points: tuple[KeyPoint, ...] = Field(default=(), max_length=12)
    sources: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()


class Draft(Message):
    """Writer output: one Dev.to article and its Bluesky post."""

    title: str = Field(max_length=128)
    body_markdown: str
    tags: tuple[str, ...] = Field(default=(), max_length=4)
    description: str = ""
    canonical_url: str | None = None
    bsky_text: str


class Review(Message):
    """Critic output: deterministic findings plus the LLM's score and fixes."""

    approved: bool
    score: int = Field(ge=0, le=10)
    problems: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
