"""Topic and group names per generation, and when a generation is due to move on: what
the generation switch relies on."""

from __future__ import annotations

from api.generation import GenerationInfo, due
from runledger.generations import _generation_of
from runledger.kafka import changelog_topic, group_id, logical_topic, projector_group, topic_names
from runledger.settings import Settings


def test_without_generations_names_are_the_plain_ones():
    s = Settings(kafka_bootstrap="kafka:9092")
    assert not s.uses_generations  # Apache Kafka: retention and compaction instead
    assert s.topic("events") == "runledger.events"
    assert changelog_topic(s) == "runledger-worker-executions-changelog"
    assert projector_group(s) == "runledger-projector"


def test_each_generation_has_its_own_topics_and_groups():
    s = Settings(kafka_bootstrap=None).at_generation(3)
    assert s.uses_generations  # on by default with the embedded broker
    assert s.topic("commands") == "runledger.g3.commands"
    assert changelog_topic(s) == "runledger-worker-g3-executions-changelog"
    assert group_id(s, "executors") == "runledger-executors-g3"
    assert projector_group(s) == "runledger-projector-g3"
    assert all(_generation_of(s, name) == 3 for name in topic_names(s))
    assert _generation_of(s, "runledger-worker-g3-__assignor-__leader") == 3
    assert _generation_of(s, "runledger.events") is None
    assert _generation_of(s, "other.g3.events") is None


def test_journal_rows_name_the_topic_they_were_first_sent_to():
    assert logical_topic("runledger.commands") == "commands"
    assert logical_topic("runledger.g7.step-events") == "step-events"


def _checks(settings: Settings, samples: list[tuple[float, int]], restored: int = 0,
            rss_mb: float | None = None) -> list[str | None]:
    """``due`` at each (seconds, records) check of one generation."""
    info = GenerationInfo(restored_records=restored)
    return [due(info, settings, records, rss_mb, t) for t, records in samples]


def test_a_generation_is_due_past_its_records_or_its_memory():
    s = Settings(kafka_bootstrap=None, generation_max_records=10_000,
                 generation_max_broker_mb=512, generation_quiet_seconds=0)  # fmt: skip
    assert _checks(s, [(0, 5_000), (10, 10_999)], restored=1_000) == [None, None]
    assert _checks(s, [(0, 11_000)], restored=1_000) == ["records"]
    # memory counts once the generation has grown at least by what the switch put there
    assert _checks(s, [(0, 1_900)], restored=1_000, rss_mb=600) == [None]
    assert _checks(s, [(0, 2_000)], restored=1_000, rss_mb=600) == ["memory"]


def test_a_quiet_generation_moves_on_once_it_holds_enough():
    s = Settings(kafka_bootstrap=None, generation_quiet_seconds=60,
                 generation_quiet_min_records=50_000)  # fmt: skip
    # under one record a second for 60 s: quiet
    busy_then_quiet = [(0, 40_000), (30, 60_000), (60, 60_030), (90, 60_059), (120, 60_080)]
    assert _checks(s, busy_then_quiet) == [None, None, None, "quiet", "quiet"]
    # 61 records in 60 s is not quiet; a trickle under it is, whatever its pace
    assert _checks(s, [(0, 60_000), (30, 60_040), (60, 60_061)]) == [None, None, None]
    assert _checks(s, [(0, 60_000), (10, 60_000), (70, 60_059)]) == [None, None, "quiet"]
    # quiet but small (counted from what the last switch restored): not worth a restore
    assert _checks(s, [(0, 70_000), (60, 70_000)], restored=30_000) == [None, None]
    off = s.model_copy(update={"generation_quiet_seconds": 0})
    assert _checks(off, [(0, 60_000), (600, 60_000)]) == [None, None]
