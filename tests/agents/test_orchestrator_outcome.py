"""The cycle report's outcome: ok, degraded (a model endpoint, feed or platform failed) or failed (and nothing stored)."""

from __future__ import annotations

import pytest

from agents.orchestrator import CYCLE_DEGRADED, CYCLE_FAILED, CYCLE_OK, CycleReport
from agents.feeds import FeedReport
from publishers.protocol import PermanentError, RetryableError
from tests.agents.test_orchestrator_cycle import Rig, sq_engine  # noqa: F401 - the engine fixture
from tests.fakes.provider import rejected
from tests.fakes.scripted_llm import SCRIPTED_URL, ListFeed


class ReportingFeed(ListFeed):
    """A feed source that, like ResearchFeed, says how each feed went at its last fetch."""

    def __init__(self, candidates, reports):  # noqa: ANN001
        super().__init__(candidates)
        self.reports = reports


@pytest.fixture
def sq_rig(sq_engine):  # noqa: F811 - the fixture imported above
    return lambda **kw: Rig(sq_engine, **kw)


async def test_a_cycle_with_every_dependency_answering_is_ok(sq_rig):
    rig = sq_rig()
    report = await rig.cycle()
    assert report.published == 1 and report.published_to == ["local"]
    assert report.outcome == CYCLE_OK and report.why() == "" and report.progress > 0


async def test_a_model_endpoint_refusing_the_first_step_fails_the_cycle_and_names_the_endpoint(sq_rig):
    rig = sq_rig()
    rig.provider.enqueue("research", rejected(403))
    report = await rig.cycle()
    assert report.progress == 0 and report.llm_failures == {SCRIPTED_URL: 1}
    assert report.outcome == CYCLE_FAILED
    assert report.why().startswith(f"model endpoint failed: {SCRIPTED_URL} (1 step(s))")


async def test_publish_failures_are_kept_by_platform_and_degrade_a_cycle_that_moved(sq_rig):
    rig = sq_rig(items=2)
    rig.channel.fail_with = [RetryableError("bluesky", "timeout", status=504), PermanentError("devto", "bad", status=422)]
    report = await rig.cycle()
    assert set(report.publish_failures) == {"bluesky", "devto"} and "422" in report.publish_failures["devto"]
    assert report.progress > 0 and report.outcome == CYCLE_DEGRADED
    assert "publish failed: " in report.why()


async def test_every_feed_failing_with_nothing_to_resume_fails_the_cycle(sq_rig):
    rig = sq_rig()
    rig.feed = ReportingFeed([], [FeedReport("http://127.0.0.1:8799/feed.xml", "fetch_error", error="refused")])
    report = await rig.cycle()
    assert report.feed_failures == {"http://127.0.0.1:8799/feed.xml": "fetch_error: refused"}
    assert report.outcome == CYCLE_FAILED
    assert report.why() == "every feed failed: http://127.0.0.1:8799/feed.xml (fetch_error: refused)"


def test_one_feed_of_two_failing_while_nothing_is_new_is_degraded_not_failed():
    report = CycleReport("c1", feeds_ok=["http://a/feed"], feed_failures={"http://b/feed": "http_error"})
    assert report.progress == 0 and report.outcome == CYCLE_DEGRADED
    assert report.why() == "1 of 2 feed(s) failed: http://b/feed (http_error)"
    assert CycleReport("c2").outcome == CYCLE_OK  # nothing to do and nothing failing


async def test_a_model_that_answers_invalid_replies_is_named_by_role_not_as_a_failed_endpoint(sq_rig):
    rig = sq_rig()
    rig.provider.default["writer"] = '{"title": "cut off at max_tok'  # not JSON, twice (the repair call too)
    report = await rig.cycle()
    assert report.researched == 1 and report.drafted == 0  # research moved: degraded, not failed
    assert report.llm_failures == {} and report.invalid_replies == {"writer": 1}
    assert report.outcome == CYCLE_DEGRADED
    assert report.why() == "model replies invalid: writer (1 step(s))"
    assert "model endpoint failed" not in report.why()
