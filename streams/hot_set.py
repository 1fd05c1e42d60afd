"""Which executions a worker keeps in its table (the hot set), and until when.

Two kinds leave it, each once a `wake` finds it past its time:
- a finished execution, ``finished_ttl`` after its last event;
- a reported execution that has not finished, ``idle_ttl`` after its last event. A
  reporter that never sends an end would otherwise hold ~3 kB of worker memory per
  execution until the tracked idle timeout (a day by default) ends it.

Both come back on their next message: the API puts the archived state in front of it
(api/accept.py), and the API's idle sweep does the same for an evicted execution whose
tracked idle timeout has come (api/idle_sweep.py). So only executions that nothing else
sends messages to may leave unfinished: a plain reported one (no plan, steered by nobody
but its reporters and the API), running, not a sub-execution, not through the admission
queue. Everything else stays until it has finished.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.state import ExecutionState


@dataclass(frozen=True)
class HotSet:
    finished_ttl_ms: int
    idle_ttl_ms: int  # 0: an unfinished execution stays until it finishes

    def leaves_at(self, state: ExecutionState) -> int | None:
        """When ``state`` may leave the hot set (epoch ms); None: not as it is now."""
        if state.finished:
            return state.last_activity_at + self.finished_ttl_ms
        if self.idle_ttl_ms and may_idle_out(state):
            return state.last_activity_at + self.idle_ttl_ms
        return None

    def gone(self, state: ExecutionState, now: int) -> bool:
        """Whether a wake at ``now`` takes ``state`` out of the hot set."""
        at = self.leaves_at(state)
        return at is not None and now >= at


def may_idle_out(state: ExecutionState) -> bool:
    """A reported execution nothing but the API sends messages to, waiting for reports."""
    return (state.mode == "tracked" and state.status == "running" and not state.admission
            and state.parent_execution_id is None)  # fmt: skip
