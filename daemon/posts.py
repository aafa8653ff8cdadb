"""What the publishers delivered, keyed the way the ledger books it: a post is "platform:remote id".

    post_key("devto", "1001")  -> "devto:1001"     the post id engagement income is booked with
    posts_of(outbox)           -> {task id: [post keys]}   each task's posts: the report's P&L and
                                                           the status page's cost per article
    task_of(outbox)            -> {post key: task id}      the task behind each post (engagement)

The one home of the task <-> post map: `ledger report`, the demo, the status page
(daemon/status.py) and the earnings job (daemon/engagement.py) all read it here.
A task's compute is booked before any post exists, so no compute posting can
name its post: the report joins this map (the outbox is the one record of what
was published) with the post ids booked on income.
"""

from __future__ import annotations

from typing import Any


def post_key(platform: str, remote_id: str) -> str:
    """The ledger's id of one published post."""
    return f"{platform}:{remote_id}"


def posts_of(outbox: Any) -> dict[str, list[str]]:  # noqa: ANN401 - a publishers.outbox.Outbox
    """task id -> the keys of the posts it published (tasks without posts, and hand posts, left out)."""
    out: dict[str, list[str]] = {}
    for r in outbox.published():
        if r.task_id and r.published is not None:
            out.setdefault(r.task_id, []).append(post_key(r.platform, r.published.remote_id))
    return out


def task_of(outbox: Any) -> dict[str, str | None]:  # noqa: ANN401 - a publishers.outbox.Outbox
    """post key -> the task that made it (None for a hand post), for every post delivered."""
    return {
        post_key(r.platform, r.published.remote_id): r.task_id for r in outbox.published() if r.published is not None
    }
