"""Held drafts for the console tests: tasks in the real task store, as the orchestrator leaves them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

from agents.tasks import HELD, TaskStore
from tests.fakes.scripted_llm import sample_draft, sample_item


def hold_draft(store: TaskStore, n: int, *, title: str, score: int, reason: str, cost: int) -> str:
    """A held draft titled `title` with the critic's score, a reason and its cost; its id."""
    t = store.create(cycle_id=f"c{n}", items=[sample_item(n)])
    t.messages.drafts.append(sample_draft(title=title))
    t.score = score
    return store.advance(t, HELD, reason=reason, cost=cost,
                         held_until=datetime.now(timezone.utc) + timedelta(hours=24)).id


class Forms(HTMLParser):
    """The forms of a page: [(action, {field: value})] (hidden and text inputs)."""

    def __init__(self, page: str):
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append((a.get("action") or "", {}))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1][1][a["name"] or ""] = a.get("value") or ""

    def first(self, action: str, task: str | None = None) -> dict[str, str]:
        """The fields of the first form posting to `action` (for `task`, when given)."""
        for act, fields in self.forms:
            if act == action and (task is None or fields.get("task") == task):
                return dict(fields)
        raise AssertionError(f"no form for {action} {task or ''} in {self.forms}")
