"""Appending accepted commands and report batches to Kafka (answer only after the ack)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from api.envelope import ApiError
from runledger.kafka import logical_topic, make_producer
from runledger.settings import Settings
from streams.bundles import pack

log = logging.getLogger("runledger.api.bus")
Record = tuple[str, str, bytes]  # (topic, key = execution id, value)


class CommandBus:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = make_producer(settings)
        self.started = False

    async def start(self) -> None:
        await self.producer.start()
        self.started = True

    async def stop(self) -> None:
        if self.started:
            await self.producer.stop()
            self.started = False

    async def publish(self, records: Sequence[Record]) -> None:
        """Append every record to its topic in the current generation (``self.settings``);
        return once the broker acknowledged all of them."""
        if not self.started:
            raise ApiError(503, "broker_unavailable", "the broker is not connected yet")
        try:
            await asyncio.wait_for(self._send(records), self.settings.publish_timeout)
        except (KafkaError, TimeoutError) as exc:
            log.warning("publish failed: %r", exc)
            why = str(exc) or f"no answer within {self.settings.publish_timeout:g} s"
            raise ApiError(503, "broker_unavailable", f"the broker did not take the write "
                           f"({why}); it is in the journal and is appended again when the "
                           "broker is restored: retry with the same ids") from exc

    async def _send(self, records: Sequence[Record]) -> None:
        """One Kafka message per topic and partition (streams/bundles.py): the worker's
        cost is per message, not per execution."""
        topic = self.settings.topic
        futures = [await self.producer.send(topic(logical_topic(name)), value=value,
                                            key=key.encode())
                   for name, key, value in pack(records, self.settings.partitions)]  # fmt: skip
        await asyncio.gather(*futures)
