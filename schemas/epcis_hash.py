"""EPCIS 2.0 event ids: the "EPCIS Event Hash ID" of GS1 CBV 2.0 (Core Business Vocabulary).

An event's id is ``ni:///sha-256;<hex>?ver=CBV2.0`` (RFC 6920), the SHA-256 of
its *pre-hash string*: the event's fields in a fixed order, each written
``name=value`` with canonical values (:mod:`schemas.epcis_normalise`), joined
without separators. Two serialisations of one event get one id; any change to
what the event says changes it.

The pre-hash string is built the way the reference implementation
(RalphTro/epcis-event-hash-generator) builds it, since its output is what
published ids encode:

1. ``eventType=`` and the event's type.
2. The fields of the canonical property order (:data:`_EVENT_ORDER`); inside a
   list the rendered members are sorted, nested fields follow their own order.
3. Every field the order did not take, sorted by its rendering: among them
   ``bizTransactionList``, ``sourceList``, ``destinationList``, ``ilmd`` and the
   user extensions as ``{namespace}name=value``. ``eventID``, ``recordTime``,
   ``errorDeclaration`` and comments are not hashed.

Where the reference's JSON handling is a known bug (``hashes.json``), suyuan
follows the standard instead: ``true`` is written ``true``; ``gs1:``, ``cbv:``
and ``epcis:`` values are expanded even when the document does not declare the
prefix; a business transaction, source or destination writes its type before
its value whatever the key order; bare CBV terms are expanded from the field
they stand in, not guessed from other values in the document; and a document's
namespaces never leak into the next one. Identifiers the reference leaves
unconverted through gaps in its patterns are converted
(:func:`schemas.epcis_normalise.digital_link`), and an event it would hash by
the machine's local time zone (a timestamp without UTC offset) is refused.

Rule numbers in comments are those of the algorithm's numbered steps as the
reference implementation states them; vector names are the documents under
``tests/assets/conformance/epcis``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeAlias

from schemas.epcis_normalise import (
    EPCIS_CONTEXT_PREFIXES,
    EPCIS_PROTECTED_TERMS,
    STANDARD_VALUE_PREFIXES,
    canonical_timestamp,
    canonical_value,
    expand_term,
)

__all__ = [
    "EpcisContextError",
    "EpcisHashError",
    "ScalarWriter",
    "document_event_hashes",
    "event_hash",
    "hash_id",
    "prehash_string",
    "scalar_writer",
]

_ID_PREFIX = "ni:///sha-256;"
_ID_VERSION = "?ver=CBV2.0"


class EpcisHashError(ValueError):
    """An EPCIS event or document cannot be given an event hash (no type, a bad timestamp...)."""


class EpcisContextError(EpcisHashError):
    """A JSON-LD ``@context`` redefines a protected EPCIS term or cannot be read."""


# ---------------------------------------------------------------------------
# The event as a tree of named values, as an XML binding of it would read


class _Node(NamedTuple):
    """One field: its name (``{namespace}local`` for extensions), raw text and members."""

    name: str
    value: str = ""
    children: tuple[_Node, ...] = ()
    keep_order: bool = False  # a type/value entry, written type first


_Order: TypeAlias = tuple[tuple[str, "_Order | None"], ...]

_EPC: _Order = (("epc", None),)
_QUANTITY: _Order = (("quantityElement", (("epcClass", None), ("quantity", None), ("uom", None))),)


def _leaves(names: str) -> _Order:
    return tuple((name, None) for name in names.split())


_SENSOR_METADATA = _leaves(
    "time startTime endTime deviceID deviceMetadata rawData dataProcessingMethod bizRules"
)
_SENSOR_REPORT = _leaves(
    "type exception deviceID deviceMetadata rawData dataProcessingMethod time microorganism "
    "chemicalSubstance value component stringValue booleanValue hexBinaryValue uriValue "
    "minValue maxValue meanValue sDev percRank percValue uom coordinateReferenceSystem"
)
# The canonical property order. bizTransactionList, sourceList and destinationList are
# missing on purpose: the reference writes them among the remaining fields, sorted, so
# destinationList precedes sourceList (ReferenceEventHashAlgorithm3) and both follow
# sensorElementList (AssociationEvent-f). certificationInfo follows eventTimeZoneOffset
# and parentID precedes epcList (CertificationInfoAndSensorReportWithCRS,
# transaction_event_all_possible_fields).
_EVENT_ORDER: _Order = (
    ("eventTime", None),
    ("eventTimeZoneOffset", None),
    ("certificationInfo", None),
    ("parentID", None),
    ("epcList", _EPC),
    ("inputEPCList", _EPC),
    ("childEPCs", _EPC),
    ("quantityList", _QUANTITY),
    ("childQuantityList", _QUANTITY),
    ("inputQuantityList", _QUANTITY),
    ("outputEPCList", _EPC),
    ("outputQuantityList", _QUANTITY),
    ("action", None),
    ("transformationID", None),
    ("bizStep", None),
    ("disposition", None),
    ("persistentDisposition", (("set", None), ("unset", None))),
    ("readPoint", (("id", None),)),
    ("bizLocation", (("id", None),)),
    (
        "sensorElementList",
        (
            (
                "sensorElement",
                (("sensorMetadata", _SENSOR_METADATA), ("sensorReport", _SENSOR_REPORT)),
            ),
        ),
    ),
)
_TIME_FIELDS = frozenset({"eventTime", "time", "startTime", "endTime"})
# Not hashed at the event level ("type" is written first): AssociationEvent-d and -g, the
# same event without and with an errorDeclaration, share an id.
_NOT_HASHED = frozenset({"eventID", "recordTime", "errorDeclaration", "type"})
# Comments never count, at any level (epcisDocHavingEventWithComment).
_COMMENTS = frozenset({"comment", "rdfs:comment", "{http://www.w3.org/2000/01/rdf-schema#}comment"})
# Lists written "type=…<value>=…" per entry, type first (ReferenceEventHashAlgorithm3) whatever
# the JSON key order, which 1.9.3 follows instead (hashes.json); entries sort as strings.
_TYPED_LISTS = {
    "bizTransactionList": ("bizTransaction", "bizTransactionType"),
    "sourceList": ("source", "sourceDestinationType"),
    "destinationList": ("destination", "sourceDestinationType"),
}
# JSON lists are named <item>List; these items take their XML element's name.
_LIST_ITEMS = {
    "inputEPCList": "epc",
    "outputEPCList": "epc",
    "childEPCs": "epc",
    "quantityList": "quantityElement",
    "childQuantityList": "quantityElement",
    "inputQuantityList": "quantityElement",
    "outputQuantityList": "quantityElement",
}
# Vocabulary-typed fields, by (enclosing field, field): a bare term stands for its Web URI
# here and only here, as the EPCIS context's scoped terms say (rule 16; "receiving" in
# Example_9.6.2, "Temperature" in SensorDataExample1). Elsewhere "receiving" is just text.
_VOCABULARY_FIELDS = {
    ("", "bizStep"): "bizStep",
    ("", "disposition"): "disposition",
    ("persistentDisposition", "set"): "disposition",
    ("persistentDisposition", "unset"): "disposition",
    ("sensorReport", "type"): "measurementType",
    ("sensorReport", "exception"): "sensorException",
    ("sensorReport", "component"): "component",
}


@dataclass(frozen=True, slots=True)
class _Prefixes:
    """CURIE prefixes: the document's own (keys and values) and the standard ones (values)."""

    keys: Mapping[str, str]
    values: Mapping[str, str]

    def key(self, key: str) -> str:
        prefix, sep, local = key.partition(":")
        iri = self.keys.get(prefix) if sep else None
        return key if iri is None or local.startswith("//") else f"{{{iri}}}{local}"

    def value(self, text: str) -> str:
        prefix, sep, local = text.partition(":")
        iri = self.values.get(prefix) if sep else None
        return text if iri is None or local.startswith("//") else iri + local


def _context_prefixes(context: Any) -> dict[str, str]:
    """The prefixes a JSON-LD ``@context`` (URL, object or list of them) declares."""
    prefixes: dict[str, str] = {}
    entries = context if isinstance(context, list) else [context]
    for entry in entries:
        if entry is None or isinstance(entry, str):
            continue  # a remote context: the EPCIS one, whose prefixes are known
        if not isinstance(entry, Mapping):
            raise EpcisContextError(f"@context entry {entry!r} is neither a URL nor an object")
        for term, definition in entry.items():
            if term.startswith("@") or ":" in term:
                continue  # keywords, and definitions of compact IRIs (no new prefix)
            iri = definition.get("@id") if isinstance(definition, Mapping) else definition
            _check_protected(term, iri)
            if isinstance(iri, str) and (isinstance(definition, str) or definition.get("@prefix")):
                prefixes[term] = iri
    return prefixes


_KEYWORD_ALIASES = {"id": "@id", "type": "@type", "eventID": "@id", "baseURL": "@base"}


def _check_protected(term: str, iri: object) -> None:
    # The EPCIS context is @protected: a document may repeat its definitions, not change them
    # (transformation_event_all_possible_fields redefines "cbvmda" and is refused).
    standard = EPCIS_CONTEXT_PREFIXES.get(term) or _KEYWORD_ALIASES.get(term)
    if standard is not None and iri == standard:
        return
    if standard is not None or term in EPCIS_PROTECTED_TERMS:
        raise EpcisContextError(f"@context redefines the protected EPCIS term {term!r}")


def _prefixes(*contexts: Any) -> _Prefixes:
    declared: dict[str, str] = {}
    for context in contexts:
        declared.update(_context_prefixes(context))
    return _Prefixes(keys=declared, values={**STANDARD_VALUE_PREFIXES, **declared})


def _text(value: Any, vocabulary: str | None, prefixes: _Prefixes) -> str:
    """The raw text of a JSON scalar, with bare terms and CURIEs expanded."""
    if isinstance(value, str):
        return prefixes.value(expand_term(vocabulary, value) if vocabulary else value)
    if isinstance(value, bool):  # not Python's "True": the reference's bug (SensorDataExample9)
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    raise EpcisHashError(f"unsupported JSON value {value!r}")


def _items(value: Any) -> list[Any]:
    """List members, with nested lists flattened as JSON-LD expansion does."""
    if not isinstance(value, list):
        return [value]
    if not any(isinstance(item, list) for item in value):
        return value
    return [member for item in value for member in _items(item)]


def _members(obj: Mapping[str, Any], scope: str, prefixes: _Prefixes) -> list[_Node]:
    nodes: list[_Node] = []
    for key, value in obj.items():
        if not isinstance(key, str) or key.startswith(("@", "#")) or key in _COMMENTS:
            continue  # JSON-LD keywords, "#text" of XML-converted JSON, comments
        name = prefixes.key(key)
        if name not in _COMMENTS:
            nodes.extend(_nodes(name, value, scope, prefixes))
    return nodes


def _nodes(name: str, value: Any, scope: str, prefixes: _Prefixes) -> list[_Node]:
    if name in _TYPED_LISTS:
        entries = tuple(_typed_entry(name, item, prefixes) for item in _items(value))
        return [_Node(name, children=entries)] if entries else []
    if name.endswith("List") or name == "childEPCs":
        item_name = _LIST_ITEMS.get(name, name.removesuffix("List"))
        children = [n for item in _items(value) for n in _nodes(item_name, item, name, prefixes)]
        return [_Node(name, children=tuple(children))] if children else []
    if isinstance(value, list):
        return [n for item in _items(value) for n in _nodes(name, item, scope, prefixes)]
    if isinstance(value, Mapping):
        text = _text(value.get("@value", value.get("#text")), None, prefixes)
        return [_Node(name, text, tuple(_members(value, name, prefixes)))]
    return [_Node(name, _text(value, _VOCABULARY_FIELDS.get((scope, name)), prefixes))]


def _typed_entry(list_name: str, item: Any, prefixes: _Prefixes) -> _Node:
    """A bizTransaction/source/destination: ``type=…`` then ``<name>=…`` then any extras."""
    value_name, vocabulary = _TYPED_LISTS[list_name]
    if not isinstance(item, Mapping):
        return _Node("", children=(_Node(value_name, _text(item, None, prefixes)),))
    members = _members({k: v for k, v in item.items() if k != "type"}, value_name, prefixes)
    head = [m for m in members if m.name == value_name]
    extras = sorted((m for m in members if m.name != value_name), key=_render_member)
    if "type" in item:
        head.insert(0, _Node("type", _text(item["type"], vocabulary, prefixes)))
    return _Node("", children=(*head, *extras), keep_order=True)


# ---------------------------------------------------------------------------
# Rendering


def _render_member(node: _Node) -> str:
    """``name=value`` followed by the members; sorted unless the order is fixed."""
    text = node.value.strip()
    rendered = [_render_member(child) for child in node.children]
    inner = "".join(rendered if node.keep_order else sorted(rendered))
    return node.name + (f"={canonical_value(text)}" if text else "") + inner


def _render_members(nodes: Iterable[_Node]) -> str:
    return "".join(sorted(_render_member(node) for node in nodes))


def _is_extension(node: _Node) -> bool:
    # The reference counts a member as an extension of its enclosing field only if its
    # namespace ends in "/"; SensorDataExample12 and event_with_identical_hash_id_7
    # pin this: their "https://ns.example.com/epcis" members stay behind and are written
    # with the remaining fields, in a second "sensorElementList…" block.
    return "{" in node.name and "/}" in node.name


def _gathers_extensions(nodes: Sequence[_Node]) -> bool:
    # Extensions are written at the end of an enclosing field (readPoint, sensorReport...)
    # when it has more than one member; at the event's own level they are written with
    # the remaining fields. The reference tells the event level by a member named like
    # eventTime or action.
    return len(nodes) > 1 and not any("eventTime" in n.name or "action" in n.name for n in nodes)


def _leaf(node: _Node) -> str:
    text = node.value.strip()
    if not text:
        return ""
    if node.name not in _TIME_FIELDS:
        return canonical_value(text)
    timestamp = canonical_timestamp(text)
    if timestamp is None:
        raise EpcisHashError(f"{node.name} {text!r} is not an xsd:dateTimeStamp with a UTC offset")
    return timestamp


def _render_in_order(nodes: Sequence[_Node], order: _Order) -> tuple[str, list[_Node]]:
    """Write the members ``order`` names; return the text and the members left over.

    A member whose own members were not all written is left over with those
    alone, so that the remaining-fields pass writes them (under its name) too.
    """
    gather = _gathers_extensions(nodes)
    extensions: list[_Node] = []
    by_name: dict[str, list[_Node]] = {}
    for node in nodes:
        if gather and _is_extension(node):
            extensions.append(node)
        else:
            by_name.setdefault(node.name, []).append(node)
    parts: list[str] = []
    left: list[_Node] = []
    for name, sub_order in order:
        rendered: list[str] = []
        for node in by_name.pop(name, ()):
            inner, rest = (
                _render_in_order(node.children, sub_order) if sub_order else ("", [*node.children])
            )
            value = _leaf(node)
            if value or inner:
                rendered.append(node.name + (f"={value}" if value else "") + inner)
            if rest:
                left.append(node._replace(children=tuple(rest)))
        parts.extend(sorted(rendered))
    left.extend(node for unordered in by_name.values() for node in unordered)
    if extensions:
        parts.append(_render_members(extensions))
    return "".join(parts), left


# ---------------------------------------------------------------------------
# Public API


def prehash_string(event: Mapping[str, Any], *, context: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 pre-hash string of one EPCIS 2.0 event in JSON(-LD).

    ``context`` maps the namespace prefixes of user extensions to their IRIs,
    as the enclosing document's ``@context`` declares them; an ``@context``
    inside the event adds to it.

    >>> prehash_string({"type": "ObjectEvent", "eventTime": "2020-03-04T11:00:30+01:00",
    ...                 "eventTimeZoneOffset": "+01:00", "action": "OBSERVE",
    ...                 "epcList": ["urn:epc:id:sscc:4012345.0000000111"],
    ...                 "bizStep": "departing"})
    'eventType=ObjectEventeventTime=2020-03-04T10:00:30.000ZeventTimeZoneOffset=+01:00epcListepc=https://id.gs1.org/00/040123450000001112action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-departing'
    """
    if not isinstance(event, Mapping):
        raise EpcisHashError(f"an EPCIS event is a JSON object, not {type(event).__name__}")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise EpcisHashError("the event has no type (ObjectEvent, AggregationEvent, ...)")
    prefixes = _prefixes(context, event.get("@context"))
    ordered, left = _render_in_order(_members(event, "", prefixes), _EVENT_ORDER)
    remaining = _render_members(n for n in left if n.name not in _NOT_HASHED)
    return f"eventType={event_type}{ordered}{remaining}"


def hash_id(prehash: str) -> str:
    """The id of the event whose pre-hash string is ``prehash``: ``ni:///sha-256;<hex>?ver=CBV2.0``."""
    return f"{_ID_PREFIX}{hashlib.sha256(prehash.encode('utf-8')).hexdigest()}{_ID_VERSION}"


def event_hash(event: Mapping[str, Any], *, context: Mapping[str, str] | None = None) -> str:
    """The event's id, ``ni:///sha-256;<hex>?ver=CBV2.0``; see :func:`prehash_string`."""
    return hash_id(prehash_string(event, context=context))


class ScalarWriter(Protocol):
    def __call__(self, value: Any, vocabulary: str | None = None) -> str: ...


def scalar_writer(context: Mapping[str, str] | None = None) -> ScalarWriter:
    """How the pre-hash string writes a JSON scalar of a field other than a timestamp.

    The returned ``write(value, vocabulary)`` gives the canonical text (``""`` when the
    field is written without a value), with bare terms of ``vocabulary`` (a key of
    :data:`schemas.epcis_normalise.VOCABULARIES`, or ``None``) and the CURIEs of
    ``context`` expanded, exactly as :func:`prehash_string` writes it after ``name=``.
    It lets a caller that knows an event's shape write its pre-hash string directly.
    """
    prefixes = _prefixes(context)

    def write(value: Any, vocabulary: str | None = None) -> str:
        text = _text(value, vocabulary, prefixes).strip()
        return canonical_value(text) if text else ""

    return write


def _event_list(document: Mapping[str, Any]) -> list[Any]:
    body = document.get("epcisBody")
    if isinstance(body, Mapping) and isinstance(body.get("queryResults"), Mapping):
        body = body["queryResults"].get("resultsBody")  # an EPCISQueryDocument
    if isinstance(body, Mapping):
        events = body.get("eventList", [body["event"]] if "event" in body else None)
        if isinstance(events, list):
            return events
    raise EpcisHashError("the document has no epcisBody.eventList")


def document_event_hashes(document: Mapping[str, Any]) -> list[str]:
    """The ids of an EPCISDocument's (or EPCISQueryDocument's) events, in document order.

    The document's ``@context`` supplies the namespace prefixes of the events'
    user extensions; redefining a protected EPCIS term there is refused.
    """
    if not isinstance(document, Mapping):
        raise EpcisHashError(f"an EPCIS document is a JSON object, not {type(document).__name__}")
    context = _context_prefixes(document.get("@context"))
    return [event_hash(event, context=context) for event in _event_list(document)]
