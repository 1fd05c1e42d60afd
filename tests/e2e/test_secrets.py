"""A secret used by a plan reaches the service it is meant for and nothing else: after a
run, no topic, no ClickHouse table and no log line of the product holds its value (nor a
reporter's credential-looking field)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from runledger.kafka import make_consumer
from runledger.settings import Settings
from streams.secrets import marker
from tests.e2e.conftest import launch, wait_for
from tests.e2e.plans import detail, new_eid
from tests.http_stub import serve

# Every table of the database, every row, as text: the value must be in none of them.
_GREP_TABLES = """
import sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
tables = [r[0] for r in c.query("SELECT name FROM system.tables WHERE database = 'runledger' "
                                "AND engine NOT LIKE '%View%'").result_rows]
hits = [t for t in tables if sys.argv[2] in c.query_df(f"SELECT * FROM runledger.{t}").to_csv()]
print(len(tables), ",".join(hits))
"""


async def _topic_bytes(kafka_port: int) -> tuple[list[str], bytes]:
    settings = Settings(kafka_port=kafka_port)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        topics = sorted(await consumer.topics())
        from aiokafka import TopicPartition

        tps = [TopicPartition(t, p) for t in topics
               for p in (consumer.partitions_for_topic(t) or ())]  # fmt: skip
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        seen = b""

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen += b"".join((r.key or b"") + (r.value or b"") for r in records)
        return topics, seen
    finally:
        await consumer.stop()


def test_a_secret_reaches_its_service_and_is_stored_nowhere(tmp_path: Path):
    token = f"tok-{uuid.uuid4().hex}"
    with serve() as stub:
        p = launch(tmp_path, RUNLEDGER_SECRET_API_TOKEN=token)
        try:
            p.wait_ready()
            eid, url = new_eid("secret"), f"{stub.base_url}/json/secret"
            plan = {"id": "p_secret", "steps": [
                {"id": "call", "type": "api_call", "config": {
                    "method": "POST", "url": url,
                    "headers": {"X-Key": "{{ secrets.API_TOKEN }}"},
                    "body": {"token": "Bearer {{ secrets.API_TOKEN }}",
                             "note": "{{ input.note }}"}}},
                {"id": "after", "type": "transform", "dependsOn": ["call"],
                 "config": {"mapping": {"echoed": "{{ call.data.body }}"}}}]}
            with httpx.Client(base_url=p.base_url, timeout=30) as api:
                r = api.post("/api/v1/executions", json={
                    "execution_id": eid, "plan": plan, "debug": False,
                    "inputs": {"note": marker("API_TOKEN")}})  # data posing as a reference
                assert r.status_code == 202, r.text
                done = wait_for(lambda: (d := detail(api, eid)).get("status") in (
                    "succeeded", "failed") and d, timeout=60)
                assert done["status"] == "succeeded", done
                [call] = stub.calls("/json/secret")
                assert call.headers["X-Key"] == token  # resolved for the service...
                assert f"Bearer {token}" in call.body.decode()
                assert token not in call.body.decode().split('"note"')[1]  # ...not from data
                echoed = [s for s in done["steps"] if s["step_id"] == "call"][0]["output"]
                assert "***" in echoed["data"]["body"] and token not in str(echoed)
                # A reporter's credential-looking field is not stored either.
                assert api.post("/api/v1/events", json={"events": [{
                    "execution_id": new_eid("reported"), "event_type": "log",
                    "timestamp": "2025-09-01T10:00:00Z",
                    "data": {"level": "info", "api_key": token}}]}).status_code == 202
                logs = api.get(f"/api/v1/executions/{eid}/logs").text
                events = api.get(f"/api/v1/executions/{eid}/events").text
                export = api.post("/api/v1/tracking/export", json={
                    "format": "ndjson", "kind": "records",
                    "filters": {"execution_id": eid}}).text  # fmt: skip
                assert token not in logs + events + export
            topics, raw = asyncio.run(_topic_bytes(p.kafka_port))
            assert any(t.endswith(".tasks") for t in topics) and raw
            assert token.encode() not in raw, "a topic holds the secret"
        finally:
            p.stop()
        out = subprocess.run([sys.executable, "-c", _GREP_TABLES, str(p.data_dir / "clickhouse"),
                              token], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        count, hits = out.stdout.strip().split(" ", 1) if " " in out.stdout.strip() else (
            out.stdout.strip(), "")
        assert int(count) >= 8 and hits == "", f"tables holding the secret: {hits}"
        assert token not in p.log_path.read_text(errors="replace"), "the log holds the secret"
