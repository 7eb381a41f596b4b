"""EPCIS 2.0 documents of suyuan events, and reading EPCIS events into suyuan events.

:func:`export_document` writes a GS1 EPCIS 2.0 ``EPCISDocument`` (JSON-LD binding:
``@context`` with the GS1 context and the ``suyuan`` prefix, ``type``, ``schemaVersion``
2.0, ``creationDate``, ``epcisBody.eventList``), every event with its CBV 2.0 event hash as
``eventID``. :func:`import_document` maps every event it can (:func:`read_event`, the body
of :func:`schemas.epcis.from_epcis`) and reports each one it cannot, with the reason; an
event is mapped whole or not at all, and one whose ``eventID`` is a hash id
(``ni:///sha-256;…``) must carry its own hash (other ids, ``urn:uuid:…``, are kept).

A foreign event (without ``suyuan:type``) is read only if suyuan can hold all it says: an
ObjectEvent with a bizStep of :data:`~schemas.epcis.FOREIGN_BIZ_STEPS` and that step's
action and disposition (:data:`~schemas.epcis.EPCIS_MAPPING`); items as ``urn:suyuan:``
URIs or plain GB/T 34014 codes; ``urn:suyuan:actor:`` possessing and owning parties
(ownership moves only with custody); ``suyuan:sohPct`` and ``suyuan:grade`` on inspecting,
the suyuan ilmd on commissioning. Any other field is refused by name (sensorElementList,
quantityList, bizTransactionList, other namespaces' extensions...), never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from schemas.epcis import (
    ACTOR_PREFIX,
    EPCIS_MAPPING,
    FOREIGN_BIZ_STEPS,
    ITEM_PREFIX,
    KEY_PREFIX,
    LOT_PREFIX,
    NO_PREV,
    REGION_PREFIX,
    SUYUAN_CONTEXT,
    SUYUAN_NS,
    EpcisMappingError,
    to_epcis,
)
from schemas.epcis_hash import EpcisHashError, document_event_hashes, event_hash, prehash_string
from schemas.epcis_normalise import cbv_urn_to_uri, expand_term
from schemas.events import Event, EventData, EventType, ItemId, is_lot_id

__all__ = [
    "EPCIS_CONTEXT_URL",
    "ImportReport",
    "ImportedEvent",
    "RefusedEvent",
    "export_document",
    "import_document",
    "read_event",
]

EPCIS_CONTEXT_URL: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
_HASH_ID_PREFIX: Final = "ni:///sha-256;"
_CBV: Final = "https://ref.gs1.org/cbv/"
_DATA: Final[TypeAdapter[EventData]] = TypeAdapter(EventData)
_ITEM: Final[TypeAdapter[str]] = TypeAdapter(ItemId)

# ---------------------------------------------------------------------------
# What every event has


def _named(obj: Mapping[str, Any], context: Mapping[str, str]) -> dict[str, Any]:
    """``obj`` with each key of the suyuan namespace written ``suyuan:<local>``."""
    ours = {prefix for prefix, iri in context.items() if iri == SUYUAN_NS}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        prefix, sep, local = str(key).partition(":")
        out["suyuan:" + local if sep and prefix in ours else key] = value
    return out


def _strip(value: Any, prefix: str, field: str) -> str:
    if not isinstance(value, str) or not value.startswith(prefix):
        raise EpcisMappingError(field, f"{value!r} does not start with {prefix!r}")
    return value[len(prefix) :]


def _event_time(epcis_event: Mapping[str, Any]) -> datetime:
    """``eventTime`` as an aware datetime in the event's ``eventTimeZoneOffset``."""
    raw, zone = epcis_event.get("eventTime"), epcis_event.get("eventTimeZoneOffset")
    try:
        moment = datetime.fromisoformat(str(raw))
        if moment.utcoffset() is None:
            raise ValueError("no offset")
    except ValueError as exc:
        raise EpcisMappingError("eventTime", f"{raw!r} is not a timestamp with offset") from exc
    try:
        offset = datetime.strptime(str(zone), "%z").utcoffset() if len(str(zone)) == 6 else None
    except ValueError:
        offset = None
    if offset is None:
        raise EpcisMappingError("eventTimeZoneOffset", f"{zone!r} is not of the form +08:00")
    return moment.astimezone(timezone(offset))


def _location(epcis_event: Mapping[str, Any], field: str) -> str | None:
    """The ``id`` of the readPoint or bizLocation; ``None`` when there is none."""
    value = epcis_event.get(field)
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"id"} or not isinstance(value["id"], str):
        raise EpcisMappingError(field, f"{value!r} is not an object holding only an id")
    return str(value["id"])


def _build(fields: Mapping[str, Any]) -> Event:
    """Validate a suyuan event, turning pydantic's first error into :class:`EpcisMappingError`."""
    try:
        return Event.model_validate(dict(fields))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise EpcisMappingError(where, f"not a valid suyuan event: {first['msg']}") from exc


# ---------------------------------------------------------------------------
# Events written by schemas.epcis.to_epcis


def _prev(value: Any) -> dict[str, str | None]:
    prev: dict[str, str | None] = {}
    for entry in value if isinstance(value, list) else [value]:
        item, sep, previous = str(entry).partition("=")
        if not sep:
            raise EpcisMappingError("suyuan:prev", f"{entry!r} is not '<item>=<event id or none>'")
        prev[item] = None if previous == NO_PREV else previous
    return prev


def _own_event(epcis_event: Mapping[str, Any], named: Mapping[str, Any]) -> Event:
    try:
        data = _DATA.validate_json(str(named.get("suyuan:data")))
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise EpcisMappingError("suyuan:data", f"not a suyuan event body: {reason}") from exc
    if data.type != named["suyuan:type"]:
        given = named["suyuan:type"]
        raise EpcisMappingError("suyuan:type", f"{given!r}, but suyuan:data is {data.type.value!r}")
    key = named.get("suyuan:idempotencyKey")
    return _build(
        {
            "actor": _strip(named.get("suyuan:actor"), ACTOR_PREFIX, "suyuan:actor"),
            "event_time": _event_time(epcis_event),
            "region": _strip(_location(epcis_event, "bizLocation"), REGION_PREFIX, "bizLocation"),
            "read_point": _location(epcis_event, "readPoint"),
            "idempotency_key": _strip(key, KEY_PREFIX, "suyuan:idempotencyKey"),
            "prev": _prev(named.get("suyuan:prev")),
            "data": data,
        }
    )


def _field_prehash(event: Mapping[str, Any], key: str) -> str:
    field = {key: event[key]} if key in event else {}
    return prehash_string({"type": "Event", **field}, context=SUYUAN_CONTEXT)


def _check_own(given: Mapping[str, Any], context: Mapping[str, str], event: Event) -> None:
    """Refuse an event whose EPCIS fields do not say what its ``suyuan:data`` says."""
    expected = to_epcis(event)
    if event_hash(given, context=context) == event_hash(expected, context=SUYUAN_CONTEXT):
        return
    named = _named(given, context)
    differing = [
        key
        for key in sorted(set(named) | set(expected))
        if _field_prehash(named, key) != _field_prehash(expected, key)
    ]
    fields = ", ".join(differing) or "event"
    raise EpcisMappingError(fields, "disagrees with what the event's suyuan:data says")


# ---------------------------------------------------------------------------
# Foreign events

_BASE_FIELDS: Final = frozenset(
    {"type", "eventTime", "eventTimeZoneOffset", "eventID", "recordTime", "epcList"}
    | {"action", "bizStep", "disposition", "readPoint", "bizLocation", "comment", "rdfs:comment"}
)
_STEP_FIELDS: Final[Mapping[EventType, frozenset[str]]] = {
    EventType.COMMISSION: frozenset({"ilmd"}),
    EventType.HANDOVER: frozenset({"sourceList", "destinationList"}),
    EventType.ACCEPT: frozenset({"destinationList"}),
    EventType.INSPECT: frozenset({"suyuan:sohPct", "suyuan:grade", "suyuan:remainingCapacityKwh"}),
}
_SINGLE_ITEM: Final = frozenset(FOREIGN_BIZ_STEPS.values()) - {EventType.HANDOVER, EventType.ACCEPT}
_REFUSED: Final[Mapping[str, str]] = {
    "sensorElementList": "not supported; suyuan records state of health as suyuan:sohPct on "
    "an inspecting event",
    "quantityList": "quantities of other systems' classes have no suyuan lot",
}
_VOCABULARIES: Final = {
    "BizStep-": "bizStep",
    "Disp-": "disposition",
    "SDT-": "sourceDestinationType",
}
_FIGURES: Final[Mapping[str, bool]] = {"estimated": True, "declared": False}
_RETRACTED: Final = "the event is declared erroneous; suyuan records corrections as events"
_RETIRED: Final = "decommissioned (EPCIS decommissioning event)"


def _cbv_term(value: Any, kind: str) -> str | None:
    """The bare CBV term (``shipping``) of a vocabulary value in any of its spellings."""
    if not isinstance(value, str):
        return None
    uri = cbv_urn_to_uri(value)
    uri = expand_term(_VOCABULARIES[kind], _CBV + uri[4:] if uri.startswith("cbv:") else uri)
    return uri.removeprefix(_CBV + kind) if uri.startswith(_CBV + kind) else None


def _item(uri: Any) -> str:
    text = str(uri)
    for prefix, lot in ((ITEM_PREFIX, False), (LOT_PREFIX, True)):
        if text.startswith(prefix) and is_lot_id(text[len(prefix) :]) is lot:
            text = text[len(prefix) :]
    try:
        return _ITEM.validate_python(text)
    except ValidationError as exc:
        raise EpcisMappingError("epcList", f"entry {uri!r} is not a GB/T 34014 code") from exc


def _kind(event: Mapping[str, Any]) -> EventType:
    if event.get("type") != "ObjectEvent":
        given = event.get("type")
        raise EpcisMappingError("type", f"{given!r}: only other systems' ObjectEvents are mapped")
    step = _cbv_term(event.get("bizStep"), "BizStep-") or ""
    if step not in FOREIGN_BIZ_STEPS:
        raise EpcisMappingError("bizStep", f"{event.get('bizStep')!r} has no suyuan event")
    kind = FOREIGN_BIZ_STEPS[step]
    shape = EPCIS_MAPPING[kind]
    if event.get("action") != shape.action:
        raise EpcisMappingError("action", f"{event.get('action')!r}; {step} is {shape.action}")
    disposition = event.get("disposition")
    if disposition is not None and _cbv_term(disposition, "Disp-") != shape.disposition:
        wanted = shape.disposition or "no disposition"
        raise EpcisMappingError("disposition", f"{disposition!r}; suyuan's {step} has {wanted}")
    return kind


def _check_fields(named: Mapping[str, Any], kind: EventType) -> None:
    allowed = _BASE_FIELDS | _STEP_FIELDS.get(kind, frozenset())
    for key in named:
        if key not in allowed:
            reason = _REFUSED.get(key, f"has no equivalent in suyuan's {kind.value} events")
            raise EpcisMappingError(key, reason)


def _parties(named: Mapping[str, Any], side: str) -> dict[str, str]:
    """``{party type: actor id}`` of the sourceList or destinationList."""
    field = f"{side}List"
    parties: dict[str, str] = {}
    for entry in named.get(field, []):
        kind = _cbv_term(entry.get("type") if isinstance(entry, Mapping) else None, "SDT-")
        if kind not in ("possessing_party", "owning_party"):
            raise EpcisMappingError(field, f"{entry!r} is not a possessing or owning party")
        if kind in parties:
            raise EpcisMappingError(field, f"names more than one {kind}")
        parties[kind] = _strip(entry.get(side), ACTOR_PREFIX, field)
    return parties


def _shipping(named: Mapping[str, Any], actor: str | None) -> tuple[str | None, dict[str, Any]]:
    source, destination = _parties(named, "source"), _parties(named, "destination")
    if "possessing_party" not in destination:
        raise EpcisMappingError("destinationList", "a shipping event names its receiver")
    sender = source.get("possessing_party", actor)
    receiver = destination["possessing_party"]
    owners = (source.get("owning_party"), destination.get("owning_party"))
    if owners not in ((None, None), (sender, receiver)):
        raise EpcisMappingError("sourceList", "ownership can only move with custody, both named")
    return sender, {"to": receiver, "transfer_ownership": owners != (None, None)}


def _receiving(
    named: Mapping[str, Any], actor: str | None, prev: Mapping[str, str | None]
) -> tuple[str | None, dict[str, Any]]:
    destination = _parties(named, "destination")
    if set(destination) - {"possessing_party"}:
        raise EpcisMappingError("destinationList", "ownership moves with the handover")
    handovers = set(prev.values())
    if len(handovers) != 1 or None in handovers:
        raise EpcisMappingError(
            "epcList", "receiving answers one handover: every item's last event"
        )
    return destination.get("possessing_party", actor), {"handover": handovers.pop()}


def _suyuan_only(obj: Any, context: Mapping[str, str], field: str) -> dict[str, Any]:
    named = _named(obj, context) if isinstance(obj, Mapping) else {"": obj}
    foreign = sorted(key for key in named if not key.startswith("suyuan:"))
    if foreign:
        raise EpcisMappingError(field, f"{foreign[0] or repr(obj)} has no suyuan equivalent")
    return {key.removeprefix("suyuan:"): value for key, value in named.items()}


def _commissioning(named: Mapping[str, Any], context: Mapping[str, str]) -> dict[str, Any]:
    ilmd = _suyuan_only(named.get("ilmd", {}), context, "ilmd")
    data: dict[str, Any] = {"mass_kg": ilmd.pop("massKg", None)}
    if "composition" in ilmd:
        c = _suyuan_only(ilmd.pop("composition"), context, "ilmd")
        data["composition"] = {
            "chemistry": c.get("chemistry"),
            "energy_kwh": c.get("energyKwh"),
            "mass_kg": c.get("massKg"),
            "content_kg": _suyuan_only(c.get("contentKg", {}), context, "ilmd"),
            "estimated": _FIGURES.get(str(c.get("figures"))),
            "basis": c.get("basis"),
        }
    if ilmd:
        raise EpcisMappingError("ilmd", f"suyuan:{min(ilmd)} is not a commissioning field")
    return data


def _single_item_data(
    kind: EventType, named: Mapping[str, Any], context: Mapping[str, str]
) -> dict[str, Any]:
    if kind is EventType.COMMISSION:
        return _commissioning(named, context)
    if kind is EventType.RETIRE:
        return {"reason": _RETIRED}
    if kind is EventType.INSPECT:
        return {
            "soh_pct": named.get("suyuan:sohPct"),
            "grade": named.get("suyuan:grade"),
            "remaining_capacity_kwh": named.get("suyuan:remainingCapacityKwh"),
        }
    return {}


def _foreign_event(
    epcis_event: Mapping[str, Any],
    context: Mapping[str, str],
    prev_for: Callable[[str], str | None] | None,
    actor: str | None,
    region: str | None,
    idempotency_key: str | None,
) -> Event:
    kind = _kind(epcis_event)
    named = _named(epcis_event, context)
    _check_fields(named, kind)
    items = [_item(uri) for uri in named.get("epcList", [])]
    if not items or (kind in _SINGLE_ITEM and len(items) != 1):
        raise EpcisMappingError("epcList", f"a {kind.value} names one item, not {len(items)}")
    if prev_for is None:
        raise EpcisMappingError("prev", "a foreign event needs prev_for to chain its items")
    prev = {item: prev_for(item) for item in items}
    data: dict[str, Any] = {"type": kind.value}
    if kind is EventType.HANDOVER:
        actor, fields = _shipping(named, actor)
        data |= {"items": items, **fields}
    elif kind is EventType.ACCEPT:
        actor, fields = _receiving(named, actor, prev)
        data |= {"items": items, **fields}
    else:
        data |= {"item": items[0], **_single_item_data(kind, named, context)}
    if actor is None:
        raise EpcisMappingError("actor", "the event names no possessing party; pass actor=")
    location = _location(epcis_event, "bizLocation")
    if location is None and region is None:
        raise EpcisMappingError("bizLocation", "missing; pass region= for events without one")
    moment = _event_time(epcis_event)
    digest = event_hash(epcis_event, context=context)
    return _build(
        {
            "actor": actor,
            "event_time": moment,
            "region": region
            if location is None
            else _strip(location, REGION_PREFIX, "bizLocation"),
            "read_point": _location(epcis_event, "readPoint"),
            "idempotency_key": idempotency_key or "epcis-" + digest[len(_HASH_ID_PREFIX) :][:64],
            "prev": prev,
            "data": {key: value for key, value in data.items() if value is not None},
        }
    )


def read_event(
    epcis_event: Mapping[str, Any],
    *,
    context: Mapping[str, str] = SUYUAN_CONTEXT,
    prev_for: Callable[[str], str | None] | None = None,
    actor: str | None = None,
    region: str | None = None,
    idempotency_key: str | None = None,
) -> Event:
    """Read one EPCIS event: the implementation of :func:`schemas.epcis.from_epcis`."""
    if "errorDeclaration" in epcis_event:
        raise EpcisMappingError("errorDeclaration", _RETRACTED)
    try:
        named = _named(epcis_event, context)
        if "suyuan:type" not in named:
            return _foreign_event(epcis_event, context, prev_for, actor, region, idempotency_key)
        event = _own_event(epcis_event, named)
        _check_own(epcis_event, context, event)
        return event
    except EpcisHashError as exc:
        raise EpcisMappingError("event", str(exc)) from exc


# ---------------------------------------------------------------------------
# Documents


def export_document(events: Iterable[Event], *, creation_date: datetime) -> dict[str, Any]:
    """An EPCIS 2.0 ``EPCISDocument`` holding ``events`` in order, each with its ``eventID``."""
    if creation_date.utcoffset() is None:
        raise ValueError("creation_date needs a UTC offset, e.g. 2026-03-01T09:30:00+08:00")
    event_list = []
    for event in events:
        epcis = to_epcis(event)
        eid = event_hash(epcis, context=SUYUAN_CONTEXT)
        event_list.append({"type": epcis.pop("type"), "eventID": eid, **epcis})
    return {
        "@context": [EPCIS_CONTEXT_URL, dict(SUYUAN_CONTEXT)],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": creation_date.isoformat(timespec="milliseconds"),
        "epcisBody": {"eventList": event_list},
    }


@dataclass(frozen=True, slots=True)
class ImportedEvent:
    """An event of the document that was mapped: its index, given ``eventID`` and the event."""

    index: int
    event_id: str | None
    event: Event


@dataclass(frozen=True, slots=True)
class RefusedEvent:
    """An event of the document that was not mapped, and why."""

    index: int
    event_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What :func:`import_document` mapped and refused, each in document order."""

    imported: tuple[ImportedEvent, ...]
    refused: tuple[RefusedEvent, ...]

    @property
    def events(self) -> list[Event]:
        return [entry.event for entry in self.imported]


def _event_list(doc: Mapping[str, Any]) -> list[Any]:
    body = doc.get("epcisBody")
    if isinstance(body, Mapping) and isinstance(body.get("queryResults"), Mapping):
        body = body["queryResults"].get("resultsBody")  # an EPCISQueryDocument
    events = body.get("eventList") if isinstance(body, Mapping) else None
    if not isinstance(events, list):
        raise EpcisMappingError("epcisBody", "the document has no epcisBody.eventList")
    return events


def _declared_prefixes(context: Any) -> dict[str, str]:
    """Prefixes the document's ``@context`` declares, read as :mod:`schemas.epcis_hash` does."""
    prefixes: dict[str, str] = {}
    for entry in context if isinstance(context, list) else [context]:
        if not isinstance(entry, Mapping):
            continue
        for term, definition in entry.items():
            if term.startswith("@") or ":" in term:
                continue
            if isinstance(definition, str):
                prefixes[term] = definition
            elif isinstance(definition, Mapping) and definition.get("@prefix") is True:
                prefixes[term] = str(definition.get("@id"))
    return prefixes


def _chain(
    last: Mapping[str, str], prev_for: Callable[[str], str | None] | None
) -> Callable[[str], str | None]:
    """Previous events: those mapped earlier in the document first, then ``prev_for``'s."""

    def previous(item: str) -> str | None:
        if item in last:
            return last[item]
        if prev_for is None:
            raise EpcisMappingError("prev", f"no previous event known for {item}; pass prev_for")
        return prev_for(item)

    return previous


def import_document(
    doc: Mapping[str, Any],
    *,
    prev_for: Callable[[str], str | None] | None = None,
    actor: str | None = None,
    region: str | None = None,
) -> ImportReport:
    """Map every event of an EPCIS 2.0 (capture or query) document that suyuan can hold.

    ``prev_for``, ``actor`` and ``region`` serve foreign events as in
    :func:`schemas.epcis.from_epcis`; an item's previous event is the last event mapped
    from earlier in the same document, if any. A document whose ``@context`` is refused
    (it redefines a protected EPCIS term) refuses all its events with that reason.

    Raises
    ------
    EpcisMappingError
        When the document has no event list at all.
    """
    if not isinstance(doc, Mapping):
        raise EpcisMappingError(
            "document", f"an EPCIS document is an object, not {type(doc).__name__}"
        )
    events = _event_list(doc)
    try:
        document_event_hashes({"@context": doc.get("@context"), "epcisBody": {"eventList": []}})
        context_error = None
    except EpcisHashError as exc:
        context_error = EpcisMappingError("document", str(exc))
    context = _declared_prefixes(doc.get("@context"))
    last: dict[str, str] = {}
    imported: list[ImportedEvent] = []
    refused: list[RefusedEvent] = []
    for index, raw in enumerate(events):
        given = raw.get("eventID") if isinstance(raw, Mapping) else None
        given = given if isinstance(given, str) else None
        try:
            if context_error is not None:
                raise context_error
            if not isinstance(raw, Mapping):
                raise EpcisMappingError("event", f"{type(raw).__name__}, not a JSON object")
            computed = event_hash(raw, context=context)
            if given is not None and given.startswith(_HASH_ID_PREFIX) and given != computed:
                raise EpcisMappingError("eventID", "does not match the event's CBV 2.0 hash")
            event = read_event(
                raw, context=context, prev_for=_chain(last, prev_for), actor=actor, region=region
            )
        except EpcisMappingError as exc:
            refused.append(RefusedEvent(index, given, str(exc)))
            continue
        except EpcisHashError as exc:
            refused.append(RefusedEvent(index, given, f"event: {exc}"))
            continue
        imported.append(ImportedEvent(index, given, event))
        mapped_id = event_hash(to_epcis(event), context=SUYUAN_CONTEXT)
        last |= dict.fromkeys(event.items(), mapped_id)
    return ImportReport(tuple(imported), tuple(refused))
