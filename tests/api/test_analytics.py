"""Auditors' routes on a small simulated world: lineage, flows, rates, anomalies, EPR reports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from api.settings import Settings
from ledger import note


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, Services, dict[str, str]]]:
    from trace.simulate import SimClock, SimConfig, open_simulation_tracer, simulate

    tmp = tmp_path_factory.mktemp("analytics")
    url = f"sqlite:///{tmp / 'world.db'}"
    signer = note.Signer.generate("suyuan-log")
    (tmp / "log.key").write_text(signer.to_string() + "\n")
    tracer = open_simulation_tracer(url, clock=SimClock(), signer=signer)
    simulate(tracer, SimConfig.small())
    tracer.close()
    settings = Settings(
        database_url=url, log_key_file=tmp / "log.key", rate_limit_per_minute=100_000
    )
    services = Services.start(settings)
    actors = sorted(services.tracer.world.actors.values(), key=lambda a: a.id)
    keys = {"admin": services.keys.issue(None).token}
    for actor in actors:
        keys.setdefault(actor.role.value, services.keys.issue(actor.id).token)
        keys[actor.id] = services.keys.issue(actor.id).token
    from schemas.actors import Actor, Role

    services.tracer.register_actor(
        Actor(id="auditor-1", name="Audit", role=Role.AUDITOR, region="110000")
    )
    keys["auditor"] = services.keys.issue("auditor-1").token
    with TestClient(create_app(settings, services=services)) as client:
        yield client, services, keys
    services.close()


def _get(client: TestClient, path: str, key: str | None, **params: object) -> object:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return client.get(path, headers=headers, params=params)


def test_flows_for_the_auditor_and_filtered_by_province(
    world: tuple[TestClient, Services, dict[str, str]],
) -> None:
    client, _, keys = world
    everything = _get(client, "/v1/flows", keys["auditor"]).json()  # type: ignore[attr-defined]
    assert everything["links"], everything
    province = _get(client, "/v1/flows", keys["auditor"], region="440000").json()  # type: ignore[attr-defined]
    total = sum(link["value"] for link in everything["links"])
    part = sum(link["value"] for link in province["links"])
    assert 0 <= part <= total


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"chemistry": "NCM955"}, "unknown chemistry"),
        ({"tree_size": 10**9}, "no checkpoint of size 1000000000 yet"),
        ({"tree_size": -1}, "tree_size"),
    ],
)
def test_rates_refuse_bad_queries_with_a_problem(
    world: tuple[TestClient, Services, dict[str, str]], params: dict[str, object], detail: str
) -> None:
    client, _, keys = world
    response = _get(client, "/v1/rates", keys["auditor"], **params)
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    problem = response.json()  # type: ignore[attr-defined]
    assert problem["type"] == "/problems/invalid-request" and detail in problem["detail"]


def test_rates_as_of_a_checkpoint(world: tuple[TestClient, Services, dict[str, str]]) -> None:
    client, services, keys = world
    size = services.tracer.seq
    whole = _get(client, "/v1/rates", keys["auditor"]).json()  # type: ignore[attr-defined]
    early = _get(client, "/v1/rates", keys["auditor"], tree_size=size // 4).json()  # type: ignore[attr-defined]
    assert (whole["tree_size"], early["tree_size"]) == (size, size // 4)
    assert early["rates"] != whole["rates"]


def test_rates_and_epr_report_for_a_producer(
    world: tuple[TestClient, Services, dict[str, str]],
) -> None:
    client, services, keys = world
    rates = _get(client, "/v1/rates", keys["auditor"]).json()  # type: ignore[attr-defined]
    assert rates["rates"]
    maker = next(
        a for a in services.tracer.world.actors.values() if a.role.value == "battery_maker"
    )
    own = _get(client, f"/v1/reports/epr/{maker.id}/2024", keys[maker.id])
    assert own.status_code == 200  # type: ignore[attr-defined]
    html = _get(client, f"/v1/reports/epr/{maker.id}/2024", keys["auditor"], format="html")
    assert "<svg" in html.text  # type: ignore[attr-defined]
    csv = _get(client, f"/v1/reports/epr/{maker.id}/2024", keys["auditor"], format="csv")
    assert csv.headers["content-type"].startswith("text/csv")  # type: ignore[attr-defined]
    other = next(a for a in services.tracer.world.actors.values() if a.role.value == "automaker")
    refused = _get(client, f"/v1/reports/epr/{other.id}/2024", keys[maker.id])
    assert refused.status_code == 403  # type: ignore[attr-defined]


def test_anomalies_are_for_auditors(world: tuple[TestClient, Services, dict[str, str]]) -> None:
    client, _, keys = world
    found = _get(client, "/v1/anomalies", keys["auditor"]).json()  # type: ignore[attr-defined]
    assert found["count"] > 0
    assert _get(client, "/v1/anomalies", keys["recycler"]).status_code == 403  # type: ignore[attr-defined]
    assert _get(client, "/v1/anomalies", None).status_code == 401  # type: ignore[attr-defined]


def test_lineage_of_a_recycled_pack(world: tuple[TestClient, Services, dict[str, str]]) -> None:
    client, services, keys = world
    recycled = next(
        s for s in services.tracer.world.items.values() if s.status.value == "dismantled"
    )
    lineage = _get(client, f"/v1/lineage/{recycled.id}", keys["auditor"]).json()  # type: ignore[attr-defined]
    assert lineage["custody"]["data"]
    assert lineage["downstream"]["data"]
    assert _get(client, "/v1/lineage/001PEAB0000001G1C0000001", keys["auditor"]).status_code == 404  # type: ignore[attr-defined]
