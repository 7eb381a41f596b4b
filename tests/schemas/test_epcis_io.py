"""EPCIS 2.0 documents: export of suyuan events, import of suyuan's and other systems' documents."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.epcis import EpcisMappingError, event_id
from schemas.epcis_hash import document_event_hashes, event_hash
from schemas.epcis_io import EPCIS_CONTEXT_URL, export_document, import_document
from schemas.events import EventType
from tests.schemas.epcis_support import FILES, HASHES, document, events_of, reference_ids
from tests.schemas.test_epcis import HANDOVER_ID, PACK, PACK2, SAMPLES, foreign

CREATED = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
EVENTS = list(SAMPLES.values())
NOTES = {doc["file"]: doc.get("notes", "") for doc in HASHES["documents"]}
# The GS1 document whose @context redefines the protected term "cbvmda".
PROTECTED = [file for file, notes in NOTES.items() if "protected term" in notes]


@pytest.fixture
def exported() -> dict[str, Any]:
    return export_document(EVENTS, creation_date=CREATED)


# ---------------------------------------------------------------------------
# Export


def test_export_is_an_epcis_2_document(exported: dict[str, Any]) -> None:
    assert exported["@context"] == [EPCIS_CONTEXT_URL, {"suyuan": "urn:suyuan:epcis:"}]
    assert exported["type"] == "EPCISDocument"
    assert exported["schemaVersion"] == "2.0"
    assert exported["creationDate"] == "2026-03-03T08:00:00.000+00:00"
    assert len(exported["epcisBody"]["eventList"]) == len(EVENTS)


def test_every_exported_event_carries_its_hash_as_event_id(exported: dict[str, Any]) -> None:
    given = [event["eventID"] for event in exported["epcisBody"]["eventList"]]
    assert given == [event_id(event) for event in EVENTS]
    assert given == document_event_hashes(exported)


def test_reference_generator_agrees_with_the_exported_ids(exported: dict[str, Any]) -> None:
    given = [event["eventID"] for event in exported["epcisBody"]["eventList"]]
    assert reference_ids(exported) == given


def test_export_needs_an_aware_creation_date() -> None:
    with pytest.raises(ValueError, match="creation_date needs a UTC offset"):
        export_document(EVENTS, creation_date=datetime(2026, 3, 3))


# ---------------------------------------------------------------------------
# Import of suyuan's documents


def test_exported_document_imports_every_event(exported: dict[str, Any]) -> None:
    report = import_document(exported)
    assert report.refused == ()
    assert [entry.index for entry in report.imported] == list(range(len(EVENTS)))
    assert [e.body() for e in report.events] == [e.body() for e in EVENTS]
    assert [entry.event_id for entry in report.imported] == [event_id(e) for e in EVENTS]


def test_query_document_imports_too(exported: dict[str, Any]) -> None:
    query = {
        "@context": exported["@context"],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": exported["creationDate"],
        "epcisBody": {"queryResults": {"resultsBody": exported["epcisBody"]}},
    }
    assert import_document(query).events == EVENTS


def test_event_whose_id_is_not_its_hash_is_refused(exported: dict[str, Any]) -> None:
    events = exported["epcisBody"]["eventList"]
    events[3]["eventID"] = events[4]["eventID"]
    events[5]["eventTime"] = "2026-03-02T09:30:16.123+08:00"  # changed after the id was given
    report = import_document(exported)
    assert [(r.index, r.event_id) for r in report.refused] == [
        (3, events[4]["eventID"]),
        (5, events[5]["eventID"]),
    ]
    assert {r.reason for r in report.refused} == {
        "eventID: does not match the event's CBV 2.0 hash"
    }
    assert len(report.imported) == len(EVENTS) - 2


def test_an_event_id_that_is_not_a_hash_is_kept_as_given(exported: dict[str, Any]) -> None:
    exported["epcisBody"]["eventList"][0]["eventID"] = (
        "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8"
    )
    report = import_document(exported)
    assert report.refused == ()
    assert report.imported[0].event_id == "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8"


def test_an_event_is_mapped_whole_or_refused(exported: dict[str, Any]) -> None:
    events = exported["epcisBody"]["eventList"]
    del events[1]["eventID"]
    events[1]["bizStep"] = "packing"  # the EPCIS fields no longer say what suyuan:data says
    events[2] = ["not", "an", "event"]
    report = import_document(exported)
    assert [(r.index, r.reason) for r in report.refused] == [
        (1, "bizStep: disagrees with what the event's suyuan:data says"),
        (2, "event: list, not a JSON object"),
    ]
    assert 1 not in {entry.index for entry in report.imported}


def test_document_without_an_event_list_is_refused() -> None:
    with pytest.raises(
        EpcisMappingError, match=r"^epcisBody: the document has no epcisBody.eventList"
    ):
        import_document({"type": "EPCISDocument", "epcisBody": {}})


def test_a_document_is_a_json_object() -> None:
    with pytest.raises(
        EpcisMappingError, match=r"^document: an EPCIS document is an object, not list"
    ):
        import_document([])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Import of other systems' documents


def _foreign_document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [EPCIS_CONTEXT_URL, {"suyuan": "urn:suyuan:epcis:"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-03-03T08:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def _parties(side: str, actor: str) -> list[dict[str, str]]:
    return [{"type": "possessing_party", side: f"urn:suyuan:actor:{actor}"}]


def test_later_events_chain_to_earlier_ones_in_the_document() -> None:
    shipping = foreign(
        "shipping",
        PACK,
        PACK2,
        sourceList=_parties("source", "maker-1"),
        destinationList=_parties("destination", "dealer-2"),
    )
    receiving = foreign(
        "receiving", PACK, PACK2, destinationList=_parties("destination", "dealer-2")
    )
    report = import_document(_foreign_document(shipping, receiving), prev_for=lambda item: None)
    assert report.refused == ()
    handover, accept = report.events
    assert handover.prev == {PACK: None, PACK2: None}
    assert accept.type is EventType.ACCEPT
    assert accept.data.handover == event_id(handover)  # type: ignore[union-attr]
    assert accept.prev == dict.fromkeys([PACK, PACK2], event_id(handover))


def test_foreign_events_need_prev_for_unless_the_document_chains_them() -> None:
    report = import_document(_foreign_document(foreign("collecting")), actor="collector-7")
    assert [r.reason for r in report.refused] == [
        f"prev: no previous event known for {PACK}; pass prev_for"
    ]


def test_import_options_reach_foreign_events() -> None:
    collecting = foreign("collecting")
    del collecting["bizLocation"]
    report = import_document(
        _foreign_document(collecting),
        prev_for={PACK: HANDOVER_ID}.get,
        actor="collector-7",
        region="110000",
    )
    (event,) = report.events
    assert (event.actor, event.region, event.prev) == ("collector-7", "110000", {PACK: HANDOVER_ID})
    assert event.idempotency_key == "epcis-" + event_hash(collecting)[14:78]


@pytest.mark.parametrize("file", FILES)
def test_gs1_documents_are_reported_event_by_event(file: str) -> None:
    doc = document(file)
    report = import_document(copy.deepcopy(doc), prev_for=lambda item: None, actor="importer-1")
    indexes = sorted([e.index for e in report.imported] + [r.index for r in report.refused])
    assert indexes == list(range(len(events_of(doc))))
    assert report.imported == ()  # GS1's examples name GS1 keys, never GB/T 34014 codes
    for refusal in report.refused:
        field, _, reason = refusal.reason.partition(": ")
        assert field and reason, refusal


@pytest.mark.parametrize(
    ("file", "index", "reason"),
    [
        (
            "examples/JSON/WithSensorData/SensorDataExample9.jsonld",
            0,
            "bizStep: 'sensor_reporting' has no suyuan event",
        ),
        (
            "hash_vectors/examples/epclist_normalisation.jsonld",
            0,
            "epcList: entry 'urn:epc:id:sgtin:4012345.011111.9876' is not a GB/T 34014 code",
        ),
        (
            "hash_vectors/examples/epcisDocWithSensorDataObjectEvent.jsonld",
            0,
            "sensorElementList: not supported; suyuan records state of health as suyuan:sohPct "
            "on an inspecting event",
        ),
        (
            "examples/JSON/Example-TransactionEvents-2020_07_03y.jsonld",
            0,
            "type: 'TransactionEvent': only other systems' ObjectEvents are mapped",
        ),
        (
            "examples/JSON/AssociationEvent/AssociationEvent-a.jsonld",
            0,
            "eventID: does not match the event's CBV 2.0 hash",
        ),
    ],
)
def test_gs1_refusals_say_why(file: str, index: int, reason: str) -> None:
    refused = {r.index: r.reason for r in import_document(document(file)).refused}
    assert refused[index] == reason


@pytest.mark.parametrize("file", PROTECTED)
def test_a_refused_context_refuses_every_event(file: str) -> None:
    report = import_document(document(file))
    assert report.imported == ()
    assert {r.reason for r in report.refused} == {
        "document: @context redefines the protected EPCIS term 'cbvmda'"
    }


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (
            {"eventTime": "2026-03-02 09:30:15+08:00"},
            "event: eventTime '2026-03-02 09:30:15+08:00' is not an xsd:dateTimeStamp with a "
            "UTC offset",
        ),
        ({"type": None}, "event: the event has no type (ObjectEvent, AggregationEvent, ...)"),
    ],
)
def test_event_that_cannot_be_hashed_is_refused(
    exported: dict[str, Any], tamper: dict[str, Any], reason: str
) -> None:
    event = exported["epcisBody"]["eventList"][0]
    event.update(tamper)
    del event["eventID"]
    (refusal,) = import_document(exported).refused
    assert (refusal.index, refusal.reason) == (0, reason)
