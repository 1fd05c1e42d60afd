"""Topic and group names per generation: what the generation switch relies on."""

from __future__ import annotations

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
