"""Several worker messages in one Kafka message: how the API packs them, how workers read.

Faust's cost is per Kafka message (DESIGN.md "Messages carry batches"). A 1,000-event
`POST /events` of 100 executions made 100 messages, and the whole ingest path with no
logic at all (benchmarks/floor.py) moved 5,949 and 12,346 events/s on 2 cores that way
(two runs); packing the messages of one partition together took it to 14,857 and 15,346.

So what the API appends at once goes out as one message per partition: a JSON array of
the worker messages (each exactly the bytes it would have had alone), keyed by the
first one's execution id, which lands it on the partition all of them belong to. A
worker applies the array's messages in order, as if they had come one by one. A message
alone is sent as it is, and restore re-appends journal entries one by one: both shapes
are read everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from aiokafka.partitioner import murmur2
from pydantic import TypeAdapter, ValidationError

from streams.contracts import WorkerMessage

# At most one producer batch (runledger.kafka.make_producer's max_batch_size): the
# broker's message size limit (1 MB by default) stays far off, even uncompressed.
BUNDLE_MAX_BYTES = 262_144
# What a worker applies in one pass at most, in bytes of Kafka messages. Under a backlog a
# take of 1,000 messages is 1,000 bundles (up to ~250 MB of JSON), and the objects one pass
# makes of them set how much memory Python's allocator keeps afterwards: it cannot hand
# back freed pools that share an arena with a live object.
WORKER_PASS_BYTES = 2_097_152

T = TypeVar("T")
_one = TypeAdapter(WorkerMessage)
_many = TypeAdapter(list[WorkerMessage])


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives ``key``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def pack(records: Sequence[tuple[str, str, bytes]], partitions: int,
         max_bytes: int = BUNDLE_MAX_BYTES) -> list[tuple[str, str, bytes]]:  # fmt: skip
    """(topic, key, value) records → the same, with the records of one topic and partition
    joined into arrays of at most ``max_bytes`` (a record past it goes alone). Each
    partition's records keep their order."""
    groups: dict[tuple[str, int], list[list[tuple[str, bytes]]]] = {}
    sizes: dict[tuple[str, int], int] = {}
    for topic, key, value in records:
        where = (topic, partition_of(key, partitions))
        bundles = groups.setdefault(where, [[]])
        if bundles[-1] and sizes[where] + len(value) + 1 > max_bytes:
            bundles.append([])
        if not bundles[-1]:
            sizes[where] = 1
        bundles[-1].append((key, value))
        sizes[where] += len(value) + 1
    out = []
    for (topic, _), bundles in groups.items():
        for bundle in bundles:
            if len(bundle) == 1:
                out.append((topic, *bundle[0]))
            else:
                out.append((topic, bundle[0][0], b"[" + b",".join(v for _, v in bundle) + b"]"))
    return out


def in_passes(values: Sequence[T], size: Callable[[T], int], max_bytes: int) -> Iterator[list[T]]:
    """``values`` in order, cut into runs of at most ``max_bytes`` by ``size`` (a value past
    it goes alone)."""
    run: list[T] = []
    total = 0
    for v in values:
        n = size(v)
        if run and total + n > max_bytes:
            yield run
            run, total = [], 0
        run.append(v)
        total += n
    if run:
        yield run


def is_bundle(value: bytes) -> bool:
    """Whether a Kafka message holds several worker messages (``pack``'s array)."""
    return value.startswith(b"[")


def unpack(value: bytes) -> tuple[list[WorkerMessage], list[tuple[bytes, str]]]:
    """A Kafka message's worker messages, and the (bytes, reason) of those that cannot be
    read. A whole message that cannot be read is one failure of its own bytes."""
    if not is_bundle(value):
        try:
            return [_one.validate_json(value)], []
        except (ValidationError, ValueError) as exc:
            return [], [(value, f"undecodable: {exc}")]
    try:
        messages = _many.validate_json(value)
    except (ValidationError, ValueError) as exc:
        whole = f"undecodable: {exc}"
    else:
        return (messages, []) if messages else ([], [(value, "undecodable: an empty list")])
    try:  # one bad element must not take the good ones with it (json: any integer)
        elements = json.loads(value)
    except ValueError:
        return [], [(value, whole)]
    good: list[WorkerMessage] = []
    bad: list[tuple[bytes, str]] = []
    for element in elements:
        raw = json.dumps(element, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            good.append(_one.validate_json(raw))
        except (ValidationError, ValueError) as exc:
            bad.append((raw, f"undecodable: {exc}"))
    return (good, bad) if good else ([], [(value, whole)])
