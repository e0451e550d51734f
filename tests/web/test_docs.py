"""/docs and /redoc load only vendored files, and those files are the ones the manifest pins."""

from __future__ import annotations

import re

import httpx

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.config import Settings
from tools import vendor_assets


def test_vendored_files_match_the_manifest() -> None:
    assert vendor_assets.check() == []


async def test_api_docs_pages_load_their_scripts_from_the_engine(fresh_sqlite_url: str) -> None:
    app = create_app(Settings(database_url=fresh_sqlite_url), Role.API)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as http:
        for page in ("/docs", "/redoc"):
            answer = await http.get(page)
            assert answer.status_code == 200
            sources = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
            assert sources, page
            for source in sources:
                assert source.startswith("/"), f"{page} loads {source} from elsewhere"
                fetched = await http.get(source)
                assert fetched.status_code == 200, source
