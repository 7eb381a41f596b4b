"""schemathesis against the service's own OpenAPI document: every operation, bounded examples.

The operations are read from ``create_app()`` when the tests are collected, so
routes added later are covered without touching this file. Each operation is
called in-process (ASGI) against a small seeded world — two organisations, a
commissioned pack, a pending handover — with an administrator's key on the
administration routes and an organisation's key on the others. Positive and
negative (schema-violating) inputs are drawn; every response must not be a
server error and must match the schema documented for its status code
(status-code conformance too, for operations whose schema declares error codes
of its own beyond the framework's 422).

schemathesis' ``from_fixture`` loader does not run under pytest 9 (it reads
``request.node._nodeid``), so each test asks schemathesis' own test builder (the one
its pytest plugin uses; the version is pinned in uv.lock) for the operation's
hypothesis test: explicit examples, the deterministic coverage phase (boundary
and schema-violating values) and derandomized fuzzing — the same cases every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.services import Services
from api.settings import Settings

MAX_EXAMPLES = 10
"""Fuzzed cases per operation, on top of the coverage phase's boundary and negative cases."""

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
FRAMEWORK_STATUS_CODES = frozenset({"200", "201", "202", "204", "422"})
"""What FastAPI documents by itself; an operation declaring more gets status-code conformance."""

SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

ADMIN_TAGS = frozenset({"actors", "admin"})
"""Tags of the administration routes, called with the administrator's key."""

PACK = "001PEAB0000001G1C0000001"
RATE_LIMIT = 1_000_000


def _operation_labels() -> list[str]:
    """``METHOD /path`` of every operation ``create_app()`` exposes (no database is opened)."""
    spec = create_app(Settings(rate_limit_per_minute=RATE_LIMIT)).openapi()
    return [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per operation, named after it."""
    if "operation_label" in metafunc.fixturenames:
        labels = _operation_labels()
        metafunc.parametrize("operation_label", labels, ids=labels)


@dataclass
class World:
    """The seeded service, its schema as schemathesis loaded it, and the keys to call it with."""

    schema: Any
    admin_key: str
    org_key: str

    def headers_for(self, operation: Any) -> dict[str, str]:
        tags = set(operation.tags or ())
        key = self.admin_key if tags & ADMIN_TAGS else self.org_key
        return {"Authorization": f"Bearer {key}"}


def _seed(client: TestClient, admin_key: str) -> str:
    """Two organisations, one pack, a pending handover; return the maker's API key."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    keys: dict[str, str] = {}
    for actor_id, role, region in (
        ("catl", "battery_maker", "350000"),
        ("byd", "automaker", "440000"),
    ):
        body = {"id": actor_id, "name": actor_id.upper(), "role": role, "region": region,
                "custodial_key": True}  # fmt: skip
        response = client.post("/v1/actors", headers=admin, json=body)
        assert response.status_code == 201, response.text
        keys[actor_id] = response.json()["api_key"]
    maker = {"Authorization": f"Bearer {keys['catl']}"}
    response = client.post("/v1/items", headers=maker, json=[{"code": PACK, "mass_kg": 400}])
    assert response.status_code == 201, response.text
    offer = [{"idempotency_key": "seed-handover",
              "data": {"type": "handover", "items": [PACK], "to": "byd"}}]  # fmt: skip
    response = client.post("/v1/events/custodial", headers=maker, json=offer)
    assert response.status_code == 201, response.text
    assert client.post("/v1/ledger/checkpoint", headers=maker).status_code == 200
    return keys["catl"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The seeded service on SQLite (the fuzz tests cover both backends at the parser)."""
    directory = tmp_path_factory.mktemp("openapi")
    settings_ = Settings(
        database_url=f"sqlite:///{directory / 'suyuan.db'}",
        log_key_file=directory / "log.key",
        base_url="http://testserver",
        rate_limit_per_minute=RATE_LIMIT,
    )
    services = Services.start(settings_)
    try:
        admin_key = services.keys.issue(None, label="schemathesis").token
        app = create_app(settings_, services=services)
        with TestClient(app) as client:
            org_key = _seed(client, admin_key)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield World(schema, admin_key, org_key)
    finally:
        services.close()


def _checks(operation: Any) -> list[Callable[..., Any]]:
    checks: list[Callable[..., Any]] = [not_a_server_error, response_schema_conformance]
    declared = {str(code) for code in operation.responses.status_codes}
    if declared - FRAMEWORK_STATUS_CODES:
        checks.append(status_code_conformance)
    return checks


def test_operation_conforms_to_its_schema(operation_label: str, world: World) -> None:
    operation = world.schema.find_operation_by_label(operation_label)
    assert operation is not None, f"schemathesis does not see {operation_label}"
    headers = world.headers_for(operation)
    checks = _checks(operation)

    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    # The test the pytest plugin would build: explicit examples, the coverage phase (boundary
    # and negative values, deterministic) and fuzzing (positive and negative, derandomized).
    build_operation_test(
        config=world.schema.config,
        operation=operation,
        test_func=check,
        given_kwargs={},
        feedback=FeedbackSources(),
        explicit_settings=SETTINGS,
    )()
