"""Poison messages: dead-lettered with the reason and the original bytes, listed over
HTTP (secrets masked), redriven to their topic; the partition keeps moving."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from aiokafka import AIOKafkaProducer

from tests.e2e.conftest import Product, wait_for
from tests.e2e.test_tracked import step_reports


async def _produce(port: int, topic: str, key: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


def _letters(api: httpx.Client, eid: str) -> list[dict]:
    return api.get("/api/v1/dead-letters", params={"execution_id": eid}).json()["data"]["items"]


def test_a_poison_message_is_listed_masked_redriven_and_the_partition_moves_on(
    product: Product, api: httpx.Client
):
    eid = f"poison_{uuid.uuid4().hex[:8]}"
    generation = api.get("/api/v1/stats/realtime").json()["data"]["generation"]["number"]
    poison = b'{"kind": "no_such_kind", "execution_id": "%s", "token": "s3cret"}' % eid.encode()
    asyncio.run(_produce(product.kafka_port, f"runledger.g{generation}.step-events", eid, poison))

    [letter] = wait_for(lambda: _letters(api, eid), timeout=30)
    assert letter["reason"].startswith("undecodable")
    assert letter["topic"] == "step-events" and letter["execution_id"] == eid
    assert letter["message"]["kind"] == "no_such_kind" and letter["message"]["token"] == "***"
    assert letter["bytes"] == len(poison) and letter["redriven_at"] is None
    assert api.get(f"/api/v1/dead-letters/{letter['id']}").json()["data"] == letter

    # The same partition goes on: a report of the same execution is applied after it.
    r = api.post("/api/v1/events", json={"events": step_reports(eid, "a", "erp", 0, 5)})
    assert r.status_code == 202, r.text
    wait_for(lambda: api.get(f"/api/v1/executions/{eid}").json()["data"].get("last_seq", 0) >= 2)

    redriven = api.post(f"/api/v1/dead-letters/{letter['id']}/redrive")
    assert redriven.status_code == 202, redriven.text
    assert redriven.json()["data"]["redrives"] == 1 and redriven.json()["data"]["redriven_at"]
    # Still poison (nothing was fixed): it comes back as a new dead letter, same bytes.
    def two() -> list[dict] | None:
        letters = _letters(api, eid)
        return letters if len(letters) == 2 else None

    both = wait_for(two, timeout=30)
    assert {x["id"] for x in both} > {letter["id"]}
    assert [x["bytes"] for x in both] == [len(poison)] * 2
    assert [x["redrives"] for x in both] == [0, 1]  # newest first: the new one, then the first
    # The redrive is in the audit log, naming the dead letter.
    audit = api.get("/api/v1/audit", params={"execution_id": eid, "action": "redrive"})
    [entry] = audit.json()["data"]["items"]
    assert entry["ids"] == [letter["id"]] and entry["actor"] == "anonymous"


def test_dead_letter_errors_are_in_the_envelope(api: httpx.Client):
    missing = api.get("/api/v1/dead-letters/dl_0000000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "dead_letter_not_found"
    assert api.post("/api/v1/dead-letters/dl_0000000000000000/redrive").status_code == 404
    bad = api.get("/api/v1/dead-letters/nope")
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"]
    cursor = api.get("/api/v1/dead-letters", params={"cursor": "garbage"})
    assert cursor.status_code == 422 and cursor.json()["error"]["code"] == "invalid_cursor"
