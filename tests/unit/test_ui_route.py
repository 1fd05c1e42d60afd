"""Without `make ui` the page is a clear 503 naming the fix, not a broken page."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes.ui import install_ui
from runledger.settings import Settings


def test_without_its_npm_packages_the_page_says_how_to_get_them(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {"preact": "11"}}))
    app = FastAPI()
    install_ui(app, Settings(ui_dir=tmp_path))
    r = TestClient(app).get("/ui")
    assert r.status_code == 503 and "make ui" in r.text
