"""The ASGI middleware on their own: the per-request time limit."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.middleware import TimeoutMiddleware


def test_a_request_past_its_time_limit_is_a_504_problem() -> None:
    app = FastAPI()
    app.add_middleware(TimeoutMiddleware, seconds=0.05)

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(3600)
        return {}

    @app.get("/fast")
    async def fast() -> dict[str, str]:
        return {"status": "ok"}

    with TestClient(app) as client:
        response = client.get("/slow")
        assert response.status_code == 504
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/timeout"
        assert client.get("/fast").json() == {"status": "ok"}
