"""The service on each backend, with an administrator's key and helpers to call it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from api.settings import Settings


@dataclass
class Api:
    client: TestClient
    services: Services
    admin_key: str

    def headers(self, key: str | None) -> dict[str, str]:
        return {} if key is None else {"Authorization": f"Bearer {key}"}

    def get(self, path: str, key: str | None = None, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(key), **kw)

    def post(self, path: str, key: str | None = None, **kw: Any) -> Any:
        return self.client.post(path, headers=self.headers(key), **kw)

    def actor(self, actor_id: str, role: str, region: str = "440000", **kw: Any) -> str:
        """Register an organisation with a custodial key; return its API key."""
        body = {"id": actor_id, "name": actor_id.upper(), "role": role, "region": region,
                "custodial_key": True, **kw}  # fmt: skip
        response = self.post("/v1/actors", self.admin_key, json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    url = store_url if "://" in store_url else f"sqlite:///{store_url}"
    return Settings(
        database_url=url,
        log_key_file=tmp_path / "log.key",
        base_url="http://testserver",
        rate_limit_per_minute=100_000,
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    services = Services.start(settings)
    admin = services.keys.issue(None, label="test admin")
    with TestClient(create_app(settings, services=services)) as client:
        yield Api(client, services, admin.token)
    services.close()
