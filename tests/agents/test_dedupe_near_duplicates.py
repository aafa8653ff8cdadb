"""MinHash signatures and the near-duplicate index."""

from __future__ import annotations

from agents.dedupe import NearDuplicateIndex, signature, signature_bytes, signature_from_bytes, similarity

STORY = (
    "PostgreSQL 17 ships incremental backups",
    "pg_basebackup can now take incremental backups that only copy blocks changed since a previous backup, "
    "using a WAL summarizer process, and pg_combinebackup reconstructs a full data directory from them.",
)
REWORDED = (
    "PostgreSQL 17 ships incremental backups",
    "pg_basebackup can now take incremental backups that only copy blocks changed since a previous backup, "
    "using a WAL summarizer process, and pg_combinebackup reconstructs a full data directory from those.",
)
OTHER = ("Rust 2024 edition is stable", "Rust 1.85 stabilised the 2024 edition with async closures and a reserved gen keyword.")


def test_signature_survives_a_round_trip_through_bytes() -> None:
    sig = signature(*STORY)
    back = signature_from_bytes(signature_bytes(sig))
    assert similarity(sig, back) == 1.0 and len(signature_bytes(sig)) == 512


def test_signatures_are_deterministic_across_processes() -> None:
    # a fixed seed and scheme: what the database stored yesterday compares with today's
    assert signature_bytes(signature(*STORY)) == signature_bytes(signature(*STORY))


def test_reworded_copy_is_similar_and_another_story_is_not() -> None:
    assert similarity(signature(*STORY), signature(*REWORDED)) >= 0.8
    assert similarity(signature(*STORY), signature(*OTHER)) < 0.2


def test_index_finds_near_duplicates_above_the_threshold_only() -> None:
    index = NearDuplicateIndex(threshold=0.8)
    index.add("story", signature(*STORY))
    assert index.duplicate_of(signature(*REWORDED)) == "story"
    assert index.duplicate_of(signature(*OTHER)) is None


def test_max_similarity_covers_topics_below_the_lsh_threshold() -> None:
    index = NearDuplicateIndex(threshold=0.8)
    assert index.max_similarity(signature(*STORY)) == 0.0
    index.add("other", signature(*OTHER))
    index.add("story", signature(*STORY))
    assert index.max_similarity(signature(*REWORDED)) >= 0.8
    half = (STORY[0], STORY[1][:100] + " entirely different words follow here about kernels and compilers and databases")
    assert 0.1 < index.max_similarity(signature(*half)) < 0.8


def test_index_keeps_only_the_most_recent_topics_so_memory_stays_bounded() -> None:
    index = NearDuplicateIndex(threshold=0.8, capacity=2)
    index.add("story", signature(*STORY))
    index.add("other", signature(*OTHER))
    index.add("third", signature("WASI 0.2 arrives", "Components link through typed WIT interfaces in Wasmtime."))
    assert len(index) == 2 and "story" not in index
    assert index.duplicate_of(signature(*REWORDED)) is None  # the oldest topic was forgotten
    assert index.max_similarity(signature(*OTHER)) == 1.0
