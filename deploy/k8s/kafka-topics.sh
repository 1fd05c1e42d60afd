#!/bin/bash
# Create Runledger's Kafka topics replicated, with the configs each one needs, before
# `runledger topics create` runs. That command creates missing topics with replication
# factor 1 (runledger/kafka.py) and verifies partition counts; topics that exist already
# are left as they are, so creating them here first is what makes them replicated.
#
# Runs in the apache/kafka image: the compose `kafka-topics` service and the initContainer
# of the Kubernetes `runledger-topics` Job (both mount this file). Idempotent.
#
# Environment (defaults in brackets):
#   RUNLEDGER_KAFKA_BOOTSTRAP   brokers, host:port[,host:port...] (required)
#   RUNLEDGER_PARTITIONS        partitions of every topic [12]; must equal the setting the
#                               Runledger processes run with, and cannot change later
#   RUNLEDGER_TOPIC_PREFIX      [runledger]
#   REPLICATION_FACTOR          [3]
#   MIN_INSYNC_REPLICAS         [2]; producers send with acks=all
#   RETENTION_MS                commands, step-events, tasks, events [604800000 = 7 days]
#   DEAD_LETTER_RETENTION_MS    dead-letters [2592000000 = 30 days]
#   KAFKA_TOPICS                the kafka-topics tool [/opt/kafka/bin/kafka-topics.sh]
set -euo pipefail

bootstrap="${RUNLEDGER_KAFKA_BOOTSTRAP:?set RUNLEDGER_KAFKA_BOOTSTRAP}"
partitions="${RUNLEDGER_PARTITIONS:-12}"
prefix="${RUNLEDGER_TOPIC_PREFIX:-runledger}"
replication="${REPLICATION_FACTOR:-3}"
min_isr="${MIN_INSYNC_REPLICAS:-2}"
retention="${RETENTION_MS:-604800000}"
dead_letter_retention="${DEAD_LETTER_RETENTION_MS:-2592000000}"
kafka_topics="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"

create() {  # topic, partitions, then --config pairs
    local topic="$1" count="$2"
    shift 2
    "$kafka_topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$topic" --partitions "$count" --replication-factor "$replication" \
        --config "min.insync.replicas=$min_isr" "$@"
    echo "topic $topic: $count partitions, replication $replication"
}

# Keyed by execution_id; consumed by the workers, projector, executors and WebSocket tails.
# ClickHouse keeps the journal and the events archive, so these only need to outlive the
# longest time a consumer group may be down or behind.
for name in commands step-events tasks events; do
    create "$prefix.$name" "$partitions" --config cleanup.policy=delete \
        --config "retention.ms=$retention"
done
# The projector archives dead letters into ClickHouse (dead_letters) as well.
create "$prefix.dead-letters" "$partitions" --config cleanup.policy=delete \
    --config "retention.ms=$dead_letter_retention"
# The workers' Faust table (execution states and per-partition cursors): compacted, never
# deleted by time. A finished execution's tombstone goes after delete.retention.ms.
create "$prefix-worker-executions-changelog" "$partitions" --config cleanup.policy=compact \
    --config delete.retention.ms=86400000 --config min.compaction.lag.ms=60000
# Faust's assignor topic (one partition, nothing is written to it): the worker does not
# declare topics itself (streams/app.py: topic_allow_declare=False).
create "$prefix-worker-__assignor-__leader" 1 --config cleanup.policy=compact
