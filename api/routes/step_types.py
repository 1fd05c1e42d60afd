"""Step types: list every one with its config JSON Schema; register, replace or remove one
executed by an HTTP service (seed 003's custom node types)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from api import step_types as registry
from api.accept import accept
from api.deps import Ctx, now_ms
from api.envelope import ApiError, dumps, not_found, ok
from projections.journal import Entry
from streams.plan import canonical_type
from streams.times import iso_ms

router = APIRouter(prefix="/api/v1/step-types", tags=["step types"])
Tenant = Annotated[str, Query(min_length=1, max_length=100)]
_JSON_TYPES = {"string", "integer", "number", "boolean", "object", "array", "null"}
_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"


class RegisterStepType(BaseModel):
    """An HTTP-backed step type. Seed 003's `type_name` and its shorthand schema
    (`{"field": "string"}`) are taken too; its `execution_handler` (a function inside
    that server) has no counterpart here: give the `url` that runs the step."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(alias="type_name", min_length=1, max_length=100, pattern=_NAME)
    description: str = Field(default="", max_length=2000)
    config_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    url: AnyHttpUrl | None = None
    execution_handler: str | None = Field(default=None, max_length=200)

    @field_validator("config_schema")
    @classmethod
    def _a_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        if schema and all(isinstance(v, str) and v in _JSON_TYPES for v in schema.values()):
            schema = {"type": "object", "properties": {k: {"type": v} for k, v in schema.items()}}
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        return schema

    @model_validator(mode="after")
    def _a_url(self) -> RegisterStepType:
        if self.url is None:
            raise ValueError("give url: the HTTP service that runs this step type"
                             + (" (execution_handler names a function inside another server)"
                                if self.execution_handler else ""))  # fmt: skip
        return self


@router.get("")
async def list_step_types(ctx: Ctx, tenant: Tenant = "default"):
    """Built-in types, entry-point plug-ins and HTTP-registered types, each with its
    config JSON Schema."""
    return ok({"items": registry.listing(await registry.http_types(ctx, tenant)),
               "next_cursor": None})


@router.post("", status_code=201)
async def register_step_type(body: RegisterStepType, ctx: Ctx, tenant: Tenant = "default"):
    """Register (or replace) a step type run by POSTing each step's task to `url`; plans
    use it from the next execution that starts. 409 for a built-in or plug-in name."""
    name = canonical_type(body.name)
    if registry.reserved(name):
        raise ApiError(409, "step_type_reserved", f"{name!r} is a built-in or plug-in step "
                       "type", details=[{"field": "name", "problem": "reserved"}])
    doc = {"name": name, "description": body.description, "config_schema": body.config_schema,
           "url": str(body.url), "registered_at": iso_ms(now_ms())}
    await _journal(ctx, "step_type.register", tenant, doc)
    return ok({"type": name, "source": "http", **doc}, 201)


@router.delete("/{name}")
async def remove_step_type(
    name: Annotated[str, Path(min_length=1, max_length=100)], ctx: Ctx,
    tenant: Tenant = "default",
):  # fmt: skip
    """Remove an HTTP-registered type: executions that start later cannot use it; those
    already running keep the URL they started with."""
    kind = canonical_type(name)
    current = await registry.http_types(ctx, tenant)
    registry.forget(ctx, tenant)
    if kind not in current and kind not in await registry.http_types(ctx, tenant):
        raise not_found("step type", kind)
    await _journal(ctx, "step_type.delete", tenant, {"name": kind})
    return ok({"type": kind, "deleted": True})


async def _journal(ctx: Ctx, action: str, tenant: str, doc: dict[str, Any]) -> None:
    await accept(ctx, [Entry(action=action, execution_id=doc["name"], ids=(), topic="",
                             payload=dumps(doc), received_at=now_ms(),
                             tenant=tenant)])  # fmt: skip
    registry.forget(ctx, tenant)
