"""An online rebuild needs the projector in the API's own process (chDB); with a
standalone projector it is refused with the way to do it instead."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from api.envelope import ApiError
from api.routes.admin import start_rebuild


async def test_a_standalone_projector_makes_the_online_rebuild_a_409_naming_the_way() -> None:
    ctx = SimpleNamespace(projector=None, rebuild=None)
    with pytest.raises(ApiError) as refused:
        await start_rebuild(ctx)  # type: ignore[arg-type]
    assert refused.value.status == 409 and refused.value.code == "projector_elsewhere"
    assert "--offline" in refused.value.message and ctx.rebuild is None
