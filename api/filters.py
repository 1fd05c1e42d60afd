"""Query-string filters of the analytics reads, as one FastAPI dependency (422 naming the
field for an unknown status, a bad time, or `from` after `to`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query
from pydantic import ValidationError

from api.envelope import ApiError
from projections.filters import ExecutionStatus, Filters

_Id = Annotated[str | None, Query(min_length=1, max_length=200)]


def ms_of_datetime(value: datetime | None) -> int | None:
    """Epoch milliseconds of ``value`` (UTC when it has no zone)."""
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


async def filters_from_query(
    tenant: Annotated[str, Query(min_length=1, max_length=100)] = "default",
    execution_id: _Id = None, workflow_id: _Id = None, system: _Id = None, module: _Id = None,
    status: Annotated[ExecutionStatus | None, Query()] = None,
    environment: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    step_id: _Id = None, error_type: _Id = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    label: Annotated[list[str] | None, Query(max_length=20, description="key:value, repeatable: "
                                             "every one of these labels")] = None,
) -> Filters:  # fmt: skip
    bad = [v for v in label or [] if ":" not in v or not v.split(":", 1)[0]]
    if bad:
        raise ApiError(422, "invalid_filters", "label is key:value",
                       details=[{"field": "label", "message": f"not key:value: {bad[0][:200]}"}])
    labels = dict(v.split(":", 1) for v in label or [])
    try:
        return Filters(tenant=tenant, execution_id=execution_id, workflow_id=workflow_id,
                       system=system, module=module, status=status, environment=environment,
                       step_id=step_id, error_type=error_type, since_ms=ms_of_datetime(from_),
                       until_ms=ms_of_datetime(to), labels=labels)  # fmt: skip
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else "from"
        message = "must not be after to" if field in ("from", "since_ms") \
            else exc.errors()[0]["msg"]  # fmt: skip
        raise ApiError(422, "invalid_filters", f"{field}: {message}",
                       details=[{"field": field if field != "since_ms" else "from",
                                 "message": message}]) from exc


QueryFilters = Annotated[Filters, Depends(filters_from_query)]
