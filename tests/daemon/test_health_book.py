"""HealthBook: counters, last successes and the no-progress streak, and their Prometheus text exposition."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, generate_latest

from agents.orchestrator import CycleReport
from config.settings import Settings
from daemon.health import HealthBook, verdict
from daemon.models import FAILED, OK, RETRY, SKIPPED


def exposition(book: HealthBook, interrupted: int = 0) -> str:
    class Collector:
        def collect(self):  # noqa: ANN202
            return book.families(interrupted)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def settings() -> Settings:
    return Settings(feeds=[{"url": "http://127.0.0.1:9/feed.xml"}], publishers={"local": {"enabled": True}},
                    schedule={"stalled_after_cycles": 2})


def test_counters_and_last_successes_in_the_text_format():
    now = [1_000.0]
    book = HealthBook(settings(), clock=lambda: now[0])
    text = exposition(book)
    # known label values are there at 0 before any failure, with HELP and TYPE lines
    assert '# TYPE selfpub_publish_failures_total counter' in text
    assert 'selfpub_publish_failures_total{platform="local"} 0.0' in text
    assert 'selfpub_feed_failures_total{feed="http://127.0.0.1:9/feed.xml"} 0.0' in text
    assert 'selfpub_cycles_total{outcome="failed"} 0.0' in text
    assert "selfpub_cycle_last_success_timestamp_seconds" not in text  # no ok cycle yet: no sample

    report = CycleReport("c1", researched=1, feeds_ok=["http://127.0.0.1:9/feed.xml"],
                         publish_failures={"devto": "devto 503: down"}, published_to=["local"],
                         llm_failures={"https://user:pw@llm.example/v1": 2})
    book.cycle_done(report.outcome, verdict(report), cycle_id="c1")
    text = exposition(book, interrupted=3)
    assert 'selfpub_cycles_total{outcome="degraded"} 1.0' in text
    assert 'selfpub_publish_failures_total{platform="devto"} 1.0' in text
    assert 'selfpub_publish_last_success_timestamp_seconds{platform="local"} 1000.0' in text
    assert 'selfpub_feed_last_success_timestamp_seconds{feed="http://127.0.0.1:9/feed.xml"} 1000.0' in text
    assert "pw" not in text and 'selfpub_llm_failures_total{endpoint="https://user:[REDACTED]@llm.example/v1"} 2.0' in text
    assert "selfpub_job_runs_interrupted_total 3.0" in text
    assert book.problem() == ("last cycle degraded: model endpoint failed: https://user:pw@llm.example/v1 (2 step(s)); "
                              "publish failed: devto (devto 503: down)")

    now[0] = 2_000.0
    book.cycle_done(OK, verdict(CycleReport("c2", drafted=1)))
    assert book.problem() is None
    assert "selfpub_cycle_last_success_timestamp_seconds 2000.0" in exposition(book)


def test_cycles_in_a_row_without_progress_say_so_and_progress_clears_it():
    book = HealthBook(settings())
    book.cycle_done(OK, verdict(CycleReport("c1")))  # nothing to do
    assert not book.stalled and book.problem() is None
    book.cycle_done(SKIPPED)  # paused: neither progress nor a verdict
    book.cycle_done(RETRY, None, detail="ConnectionError: refused")
    assert book.stalled and book.problem() == ("no useful progress in 2 cycle(s) in a row; "
                                               "last cycle retry: ConnectionError: refused")
    failed = CycleReport("c3", feed_failures={"http://127.0.0.1:9/feed.xml": "fetch_error"})
    assert failed.outcome == FAILED
    book.cycle_done(failed.outcome, verdict(failed))
    assert book.no_progress == 3 and "every feed failed" in book.problem()
    book.cycle_done(OK, verdict(CycleReport("c4", published=1)))
    assert book.no_progress == 0 and not book.stalled and book.problem() is None


def test_reasons_are_redacted_before_they_are_shown():
    book = HealthBook(settings(), redact=lambda t: t.replace("s3cret", "[REDACTED]"))
    book.cycle_done(FAILED, None, detail="PermanentJobError: token s3cret refused")
    assert book.problem() == "last cycle failed: PermanentJobError: token [REDACTED] refused"


def test_last_successes_are_seeded_from_before_the_process():
    book = HealthBook(settings())
    book.seed(1_500.0, {"local": 1_400.0}, {"https://u:pw@feeds.example/rss": 1_300.0})
    text = exposition(book)
    assert "selfpub_cycle_last_success_timestamp_seconds 1500.0" in text
    assert 'selfpub_publish_last_success_timestamp_seconds{platform="local"} 1400.0' in text
    assert 'selfpub_feed_last_success_timestamp_seconds{feed="https://u:[REDACTED]@feeds.example/rss"} 1300.0' in text


def test_the_last_good_feed_read_comes_from_the_research_store(tmp_path):
    from agents.research_store import ResearchStore
    from daemon.status import StatusReader
    from kernel.db import make_engine
    from ledger.journal import Journal

    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    reader = StatusReader(Journal(engine), "default")
    assert reader.last_feed_reads(["http://a/feed"]) == {}  # no research tables yet
    store = ResearchStore(engine)
    store.migrate()
    store.save_feed_state("http://a/feed", status=200, outcome="ok")
    store.save_feed_state("http://b/feed", status=None, outcome="fetch_error", error="refused")
    store.save_feed_state("http://a/feed", status=500, outcome="http_error")  # the good read stays known
    reads = reader.last_feed_reads(["http://a/feed", "http://b/feed", "http://c/feed"])
    assert list(reads) == ["http://a/feed"] and reads["http://a/feed"] > 0
    engine.dispose()


def test_invalid_model_replies_have_their_own_reason_and_counter(caplog):
    book = HealthBook(settings())
    assert 'selfpub_llm_invalid_replies_total{role="writer"} 0.0' in exposition(book)
    report = CycleReport("c1", researched=1, feeds_ok=["http://127.0.0.1:9/feed.xml"], invalid_replies={"writer": 1})
    assert report.outcome == "degraded"
    with caplog.at_level("ERROR", logger="selfpub.health"):
        book.cycle_done(report.outcome, verdict(report), cycle_id="c1")
    assert book.problem() == "last cycle degraded: model replies invalid: writer (1 step(s))"
    text = exposition(book)
    assert 'selfpub_llm_invalid_replies_total{role="writer"} 1.0' in text
    assert not re.search(r'^selfpub_llm_failures_total\{.*\} [1-9]', text, re.M)  # no endpoint failed
    assert [r.getMessage() for r in caplog.records] == ["model replies invalid"]

    nothing = CycleReport("c2", feeds_ok=["http://127.0.0.1:9/feed.xml"], invalid_replies={"research": 1})
    assert nothing.outcome == FAILED  # no progress: failed, as a failed endpoint would be (same exit code)
