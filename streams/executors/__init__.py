"""Step executors: the process that runs step tasks and reports their outcomes.

Kept apart from the state machine (STYLE.md §3): executors consume ``runledger.tasks``,
do the I/O, and answer on ``runledger.step-events`` like any external system would.
This package's ``__init__`` imports nothing, so the machine can import ``masking``
without pulling in httpx or aiokafka.
"""
