"""What the API appends at once goes out as one Kafka message per topic and partition
(streams/bundles.py): a worker must read back exactly the messages, in each partition's
order, and a bad one must not take the good ones with it."""

from __future__ import annotations

import orjson
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from streams.bundles import in_passes, pack, partition_of, unpack
from streams.contracts import Report, ReportBatch, StopExecution

PARTITIONS = 12


def report(eid: str, n: int, big: bool = False) -> bytes:
    data = {"n": n, "pad": "x" * 400} if big else {"n": n}
    return ReportBatch(execution_id=eid, received_at=1, reports=(
        Report(report_id=f"{eid}-{n}", event_type="log", timestamp=1, data=data),
    )).model_dump_json().encode()  # fmt: skip


def test_keys_go_where_kafkas_default_partitioner_puts_them():
    ids = [f"ex_{i}" for i in range(200)] + ["", "執行-1", "a" * 300]
    kafka = DefaultPartitioner()
    everything = list(range(PARTITIONS))
    assert all(partition_of(k, PARTITIONS) == kafka(k.encode(), everything, everything)
               for k in ids)  # fmt: skip


records = st.lists(st.tuples(st.sampled_from(["t.step-events", "t.commands"]),
                             st.sampled_from([f"ex_{i}" for i in range(30)]),
                             st.integers(0, 10**6), st.booleans()),
                   max_size=60)  # fmt: skip


@given(records, st.sampled_from([600, 2000, 262_144]))
def test_a_worker_reads_back_every_message_in_its_partitions_order(raw, max_bytes):
    sent = [(topic, eid, report(eid, n, big)) for topic, eid, n, big in raw]
    packed = pack(sent, PARTITIONS, max_bytes)
    got: dict[tuple[str, int], list[bytes]] = {}
    for topic, key, value in packed:
        messages, bad = unpack(value)
        assert not bad
        where = (topic, partition_of(key, PARTITIONS))
        for m in messages:  # every message sits on its own execution's partition
            assert partition_of(m.execution_id, PARTITIONS) == where[1]
        got.setdefault(where, []).extend(m.model_dump_json().encode() for m in messages)
        assert len(value) <= max_bytes or len(messages) == 1
    want: dict[tuple[str, int], list[bytes]] = {}
    for topic, key, value in sent:
        want.setdefault((topic, partition_of(key, PARTITIONS)), []).append(value)
    assert got == want


def test_a_message_alone_goes_as_it_is_and_a_partition_gets_one_message():
    alone = report("ex_1", 1)
    assert pack([("t", "ex_1", alone)], PARTITIONS) == [("t", "ex_1", alone)]
    same = [e for e in (f"ex_{i}" for i in range(100)) if partition_of(e, PARTITIONS) == 3][:5]
    packed = pack([("t", e, report(e, 0)) for e in same], PARTITIONS)
    assert len(packed) == 1 and packed[0][1] == same[0]
    assert [m.execution_id for m in unpack(packed[0][2])[0]] == same


def test_one_bad_message_of_a_bundle_is_parked_alone():
    good, other = report("ex_1", 1), StopExecution(
        execution_id="ex_2", received_at=1, command_id="c").model_dump_json().encode()
    bad = b'{"kind":"report","execution_id":"ex_3"}'  # no received_at, no reports
    messages, failures = unpack(b"[" + b",".join([good, bad, other]) + b"]")
    assert [m.execution_id for m in messages] == ["ex_1", "ex_2"]
    [(raw, reason)] = failures
    assert orjson.loads(raw) == orjson.loads(bad) and reason.startswith("undecodable")


def test_poison_that_is_no_bundle_is_parked_whole():
    for poison in (b"not json", b"[1, 2]", b"[]", b'{"kind":"nope"}', b"[not json"):
        messages, [(raw, reason)] = unpack(poison)
        assert messages == [] and raw == poison and reason.startswith("undecodable")


def test_numbers_past_64_bits_survive_a_bundle_with_a_bad_message():
    big = ReportBatch(execution_id="ex_1", received_at=1, reports=(
        Report(report_id="r", event_type="log", timestamp=1, data={"n": 2**70}),
    )).model_dump_json().encode()  # fmt: skip
    messages, failures = unpack(b"[" + big + b',{"kind":"nope"}]')
    assert messages[0].reports[0].data == {"n": 2**70} and len(failures) == 1


@given(st.lists(st.binary(max_size=300)), st.integers(1, 1_000))
def test_a_take_is_applied_in_passes_of_bounded_bytes_in_order(values, max_bytes):
    """The worker applies a take of Kafka messages in passes: every message once, in order;
    a pass over the bound is one message alone, and no pass could have taken the next."""
    passes = list(in_passes(values, len, max_bytes))
    assert [v for p in passes for v in p] == values
    for i, p in enumerate(passes):
        assert p
        assert len(p) == 1 or sum(map(len, p)) <= max_bytes
        if i + 1 < len(passes):
            assert sum(map(len, p)) + len(passes[i + 1][0]) > max_bytes
