"""Faust table writes land in the changelog partition of the *current event*."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust.streams import _current_event
from faust.types import EventT


@contextmanager
def changelog_partition_of(ev: EventT) -> Iterator[None]:
    """Make ``ev`` the current event for table writes, so the changelog record lands in
    the partition ``ev`` came from.

    Only the context variable the table reads is set (it is local to this task). Setting
    the stream's ``current_event`` attribute instead would corrupt ``take_events``: its
    buffer reads that attribute when it adds the next message, pairs the new value with
    the old event, and the agent — reading ``event.value`` — silently loses a message.
    """
    token = _current_event.set(weakref.ref(ev))
    try:
        yield
    finally:
        _current_event.reset(token)
