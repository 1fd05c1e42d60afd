"""The Execution Center page is served by the API: the page, its own modules, and the npm
packages its import map names (from ui/package.json, nothing else of node_modules)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from api.routes.ui import vendor_packages

UI = Path(__file__).resolve().parents[2] / "ui"


def test_the_page_and_everything_it_imports_are_served(api: httpx.Client) -> None:
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert api.get("/ui").text == page.text
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', page.text,
                                   re.S).group(1))["imports"]  # fmt: skip
    assert set(imports) >= {"preact", "preact/hooks", "htm"}
    for url in imports.values():
        r = api.get(url)
        assert r.status_code == 200 and "javascript" in r.headers["content-type"], url
    for module in sorted(UI.glob("app/**/*.js")):
        rel = module.relative_to(UI).as_posix()
        assert api.get(f"/ui/{rel}").status_code == 200, rel
    # Only the packages the page depends on: not their own dependencies, not the lock file.
    assert vendor_packages(UI) == ["echarts", "htm", "preact"]
    assert api.get("/ui/vendor/zrender/package.json").status_code == 404
    assert api.get("/ui/package-lock.json").status_code == 404
    assert "/ui" not in json.dumps(api.get("/openapi.json").json()["paths"])
