"""Test helpers for the EPCIS event hash: the published vectors and the PyPI reference generator."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from tests.conftest import CONFORMANCE, load_vector

EPCIS = CONFORMANCE / "epcis"
HASHES: dict[str, Any] = load_vector("epcis/hashes.json")
PREHASHES: dict[str, str] = load_vector("epcis/prehashes.json")["prehashes"]
FILES: list[str] = [doc["file"] for doc in HASHES["documents"]]


@dataclass(frozen=True, slots=True)
class Vector:
    """One event of a published document, with what hashes.json says about it."""

    file: str
    index: int
    expected: str | None
    basis: str
    check: str
    notes: str
    reference_1_9_3: str | None
    record: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"{self.file}#{self.index}"


VECTORS: list[Vector] = [
    Vector(
        file=doc["file"],
        index=event["index"],
        expected=event.get("expected"),
        basis=event["basis"],
        check=doc["check"],
        notes=doc.get("notes", ""),
        reference_1_9_3=event.get("reference_1_9_3"),
        record=event,
    )
    for doc in HASHES["documents"]
    for event in doc["events"]
]


@cache
def _document_text(file: str) -> str:
    return (EPCIS / file).read_text(encoding="utf-8")


def document(file: str) -> dict[str, Any]:
    """A fresh copy of a published document (``file`` relative to ``epcis/``)."""
    doc: dict[str, Any] = json.loads(_document_text(file))
    return doc


def events_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The event list of a capture or query document."""
    body = doc["epcisBody"]
    if "queryResults" in body:
        body = body["queryResults"]["resultsBody"]
    events: list[dict[str, Any]] = body["eventList"]
    return events


def reference_prehashes(doc: Mapping[str, Any]) -> list[str]:
    """Pre-hash strings from the PyPI ``epcis-event-hash-generator`` (1.9.3), in process.

    The package keeps its namespace prefixes in one module-level dict that
    leaks from one document into the next (hashes.json, ``generator.run``), so
    it is emptied first; the package changes the document it is given, so it
    gets a copy. It drops an event it cannot process, and raises on documents
    it cannot read at all (query documents, expanded term definitions).
    """
    from epcis_event_hash_generator import hash_generator, json_to_py

    json_to_py._namespaces.clear()
    with warnings.catch_warnings():
        # Its JSON-LD document loader calls the deprecated importlib.resources.open_text.
        warnings.simplefilter("ignore", DeprecationWarning)
        events = json_to_py.event_list_from_epcis_document_json(copy.deepcopy(doc))
    prehashes: list[str] = hash_generator.derive_prehashes_from_events(events)
    return prehashes


def reference_ids(doc: Mapping[str, Any]) -> list[str]:
    """Event ids from the PyPI generator (see :func:`reference_prehashes`)."""
    from epcis_event_hash_generator import hash_generator

    ids: list[str] = hash_generator.calculate_hashes_from_pre_hashes(reference_prehashes(doc))
    return ids


def first_difference(ours: str, theirs: str, *, context: int = 70) -> str:
    """Where two pre-hash strings part, for an assertion message."""
    pairs = enumerate(zip(ours, theirs, strict=False))
    at = next((i for i, (a, b) in pairs if a != b), min(len(ours), len(theirs)))
    start, end = max(0, at - context), at + context
    return f"at {at}:\n ours:   …{ours[start:end]}\n theirs: …{theirs[start:end]}"
