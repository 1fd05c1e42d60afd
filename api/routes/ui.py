"""The Execution Center page at `/` and `/ui`: static ES modules, no build step.

`ui/app/` holds the page's own modules; `/ui/vendor/<package>/` serves the npm packages
that `ui/package.json` names (installed from its lock file by `make ui`), nothing else
from `node_modules`. The page holds no data, so it is served without an API key
(api/auth.py); it asks for one when the API answers 401.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from runledger.settings import Settings

_NOT_INSTALLED = """<!doctype html><meta charset="utf-8"><title>Runledger</title>
<h1>Runledger</h1><p>The page's npm packages are not installed: run <code>make ui</code>
(<code>make run</code> does it) and reload. The API itself is up: <a href="/docs">/docs</a>.</p>
"""


def vendor_packages(ui_dir: Path) -> list[str]:
    """The npm packages the page may load: those `ui/package.json` depends on."""
    try:
        manifest = json.loads((ui_dir / "package.json").read_text())
    except (OSError, ValueError):
        return []
    return sorted(manifest.get("dependencies", {}))


def install_ui(app: FastAPI, settings: Settings) -> None:
    ui_dir = settings.ui_dir
    packages = vendor_packages(ui_dir)
    no_cache = {"Cache-Control": "no-cache"}

    async def page() -> object:
        if not all((ui_dir / "node_modules" / name).is_dir() for name in packages):
            return HTMLResponse(_NOT_INSTALLED, status_code=503)
        return FileResponse(ui_dir / "index.html", headers=no_cache)

    async def to_page() -> RedirectResponse:
        return RedirectResponse("/ui")

    app.add_api_route("/ui", page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/", to_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    app.mount("/ui/app", StaticFiles(directory=ui_dir / "app", check_dir=False), name="ui-app")
    for name in packages:
        app.mount(f"/ui/vendor/{name}", name=f"ui-vendor-{name}",
                  app=StaticFiles(directory=ui_dir / "node_modules" / name, check_dir=False))
