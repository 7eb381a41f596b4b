"""Value normalisation for the EPCIS event hash (GS1 CBV 2.0, "EPCIS Event Hash ID").

The event hash compares events by meaning, not by spelling, so every value is
brought to one canonical form before it enters the pre-hash string:

- CBV vocabulary in bare JSON-LD form (``receiving``) or as a CBV 1.x URN
  (``urn:epcglobal:cbv:bizstep:receiving``) becomes its Web URI
  (``https://ref.gs1.org/cbv/BizStep-receiving``);
- numbers lose trailing zeros (``26.0`` → ``26``);
- EPC URNs (GS1 Tag Data Standard pure identities, classes and ID patterns)
  become canonical GS1 Digital Link URIs, and Digital Link URIs are
  *constrained*: ``https://id.gs1.org``, no query string, only the finest
  identification level (GS1 Digital Link URI Syntax 1.2 §4.11);
- timestamps become UTC with millisecond precision.

The vocabularies are the term lists of the EPCIS 2.0 JSON-LD context
(``https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

__all__ = [
    "EPCIS_CONTEXT_PREFIXES",
    "EPCIS_PROTECTED_TERMS",
    "STANDARD_VALUE_PREFIXES",
    "VOCABULARIES",
    "canonical_number",
    "canonical_timestamp",
    "canonical_value",
    "cbv_urn_to_uri",
    "digital_link",
    "expand_term",
]

_CBV = "https://ref.gs1.org/cbv/"
# Identifiers, parties, places and vocabulary recur from event to event along a lifecycle.
_CACHED_VALUES = 16384
_GS1_VOC = "https://gs1.org/voc/"
_DIGITAL_LINK = "https://id.gs1.org/"

# ---------------------------------------------------------------------------
# Vocabularies and prefixes of the EPCIS 2.0 JSON-LD context

_BIZ_STEPS = (
    "accepting arriving assembling collecting commissioning consigning creating_class_instance "
    "cycle_counting decommissioning departing destroying disassembling dispensing encoding "
    "entering_exiting holding inspecting installing killing loading other packing picking "
    "receiving removing repackaging repairing replacing reserving retail_selling sampling "
    "sensor_reporting shipping staging_outbound stock_taking stocking storing transporting "
    "unloading unpacking void_shipping"
)
_DISPOSITIONS = (
    "active available completeness_verified completeness_inferred conformant container_closed "
    "container_open damaged destroyed dispensed disposed encoded expired in_progress in_transit "
    "inactive mismatch_instance mismatch_class mismatch_quantity needs_replacement "
    "no_pedigree_match non_conformant non_sellable_other partially_dispensed recalled reserved "
    "retail_sold returned sellable_accessible sellable_not_accessible stolen unavailable unknown"
)
_BIZ_TRANSACTION_TYPES = (
    "bol cert desadv inv pedigree po poc prodorder recadv rma testprd testres upevt"
)
_SOURCE_DESTINATION_TYPES = "owning_party possessing_party location"
_MEASUREMENT_TYPES = (
    "AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Radioactivity Altitude "
    "AmountOfSubstance AmountOfSubstancePerUnitVolume Angle AngularAcceleration AngularMomentum "
    "AngularVelocity Area Capacitance Conductance Conductivity Count Density Dimensionless "
    "DoseEquivalent DoseEquivalentRate DynamicViscosity ElectricCharge ElectricCurrent "
    "ElectricCurrentDensity ElectricFieldStrength Energy Exposure Force Frequency Illuminance "
    "Inductance Irradiance KinematicViscosity Length LinearMomentum Luminance LuminousFlux "
    "LuminousIntensity MagneticFlux MagneticFluxDensity MagneticVectorPotential Mass "
    "MassConcentration MassFlowRate MassPerAreaTime MemoryCapacity MolalityOfSolute MolarEnergy "
    "MolarMass MolarVolume Power Pressure RadiantFlux RadiantIntensity RelativeHumidity Resistance "
    "Resistivity SolidAngle SpecificVolume Speed SurfaceDensity SurfaceTension Temperature Time "
    "Torque Voltage Volume VolumeFlowRate VolumeFraction VolumetricFlux Wavenumber"
)
_SENSOR_EXCEPTIONS = "ALARM_CONDITION ERROR_CONDITION"
_COMPONENTS = (
    "x y z axial_distance azimuth height spherical_radius polar_angle elevation_angle easting "
    "northing latitude longitude altitude"
)


def _terms(prefix: str, names: str) -> Mapping[str, str]:
    return {name: prefix + name for name in names.split()}


VOCABULARIES: Mapping[str, Mapping[str, str]] = {
    "bizStep": _terms(_CBV + "BizStep-", _BIZ_STEPS),
    "disposition": _terms(_CBV + "Disp-", _DISPOSITIONS),
    "bizTransactionType": _terms(_CBV + "BTT-", _BIZ_TRANSACTION_TYPES),
    "sourceDestinationType": _terms(_CBV + "SDT-", _SOURCE_DESTINATION_TYPES),
    "measurementType": _terms(_GS1_VOC, _MEASUREMENT_TYPES),
    "sensorException": _terms(_GS1_VOC, _SENSOR_EXCEPTIONS),
    "component": _terms(_CBV + "Comp-", _COMPONENTS),
}
"""Bare JSON-LD terms of each vocabulary-typed EPCIS field, mapped to their Web URIs."""

EPCIS_CONTEXT_PREFIXES: Mapping[str, str] = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": _CBV,
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": _GS1_VOC,
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}
"""Prefixes the (protected) EPCIS 2.0 context defines."""

STANDARD_VALUE_PREFIXES: Mapping[str, str] = {
    name: EPCIS_CONTEXT_PREFIXES[name] for name in ("gs1", "epcis", "cbv")
}
"""CURIE prefixes every value is expanded with, declared in the document or not (rule 15).

1.9.3 needs them declared; the published ids expand them anyway (``cbv:Comp-latitude`` in
aggregation_event_all_possible_fields, ``gs1:Temperature`` in event_with_identical_hash_id_7).
Keys are expanded with the document's own prefixes only: object_event_all_possible_fields
keeps its ``cbvmda:lotNumber`` key as written.
"""

_PROTECTED_TERMS = (
    "id type baseURL ObjectEvent AggregationEvent TransformationEvent AssociationEvent "
    "TransactionEvent Collection member eventTime recordTime eventTimeZoneOffset action "
    "certificationInfo bizStep disposition bizLocation readPoint transformationID epcList "
    "sourceList destinationList persistentDisposition quantity epcClass uom quantityList "
    "bizTransactionList parentID childEPCs childQuantityList inputEPCList outputEPCList "
    "inputQuantityList outputQuantityList sensorElementList errorDeclaration eventID "
    "creationDate sender receiver instanceIdentifier schemaVersion ilmd EPCISDocument "
    "EPCISQueryDocument epcisHeader masterData vocabularyList epcisBody queryResults "
    "subscriptionID queryName resultsBody eventList children"
)
EPCIS_PROTECTED_TERMS = frozenset(_PROTECTED_TERMS.split())
"""Non-prefix terms of the EPCIS 2.0 context, which a document may not redefine."""


def expand_term(vocabulary: str, value: str) -> str:
    """Return the Web URI of a bare term of ``vocabulary``, or ``value`` when it is not one."""
    return VOCABULARIES[vocabulary].get(value, value)


_CBV_URN_PREFIXES = (
    ("urn:epcglobal:cbv:bizstep:", _CBV + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", _CBV + "Disp-"),
    ("urn:epcglobal:cbv:btt:", _CBV + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", _CBV + "SDT-"),
    ("urn:epcglobal:cbv:er:", _CBV + "ER-"),
)


def cbv_urn_to_uri(value: str) -> str:
    """Rewrite a CBV 1.x vocabulary URN as its CBV 2.0 Web URI; other values pass unchanged."""
    for urn, uri in _CBV_URN_PREFIXES:
        if value.startswith(urn):
            return uri + value[len(urn) :]
    return value


# ---------------------------------------------------------------------------
# Numbers and timestamps


def canonical_number(text: str) -> str:
    """Write a numeric string without trailing zeros: ``"26.0"`` → ``"26"``, ``"1e3"`` → ``"1000"``.

    Anything Python's ``float`` reads counts as a number, as in the reference
    implementation (``"23.0"`` in an extension of object_event_all_possible_fields
    becomes ``23``, and ``"007"`` would become ``7``); other strings, infinities
    and NaN pass unchanged.
    """
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<hms>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})"
)
_ROUND_UP = frozenset("56789")  # a fourth decimal that rounds the milliseconds up


def canonical_timestamp(text: str) -> str | None:
    """Write an ``xsd:dateTimeStamp`` in UTC with milliseconds, or ``None`` if it is not one.

    More than three decimals are rounded up when the fourth is 5-9 (rule 9:
    ``.1415`` → ``.142``, ``.1414`` → ``.141``, TimeStampRoundOff). 1.9.3 rounds
    half to even instead, so an exact tie such as ``.1425`` gets ``.143`` here and
    ``.142`` there; a carry moves into the seconds (``.9995``, where 1.9.3 fails).
    A timestamp without a UTC offset is refused: its instant is unknown.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    zone = match["zone"]
    if zone in "Zz":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['hms']}").replace(tzinfo=tz)
    except ValueError:
        return None
    fraction = match["fraction"] or ""
    millis = int(fraction[:3].ljust(3, "0"))
    if fraction[3:4] in _ROUND_UP:
        millis += 1
    moment = (moment + timedelta(milliseconds=millis)).astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


# ---------------------------------------------------------------------------
# EPC URNs (GS1 EPC Tag Data Standard) → canonical GS1 Digital Link URIs

# One character of an EPC URN component: TDS "GS3A3" characters or a %-escape.
_URN_CHAR = r"(?:%[0-9A-Fa-f]{2}|[!'()*+,.0-9:;=A-Za-z_-])"
_CPI_CHAR = r"(?:%2[3DFdf]|[0-9A-Z-])"
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# Characters legal raw in an EPC URN but percent-encoded in a Digital Link path.
_DL_ENCODE = str.maketrans(
    {"!": "%21", "(": "%28", ")": "%29", "*": "%2A", "+": "%2B", ",": "%2C", ":": "%3A"}
)
_MAX_ALPHANUMERIC_KEY = 30  # GIAI, GINC and CPI hold at most 30 characters


def _check_digit(digits: str) -> str:
    """GS1 mod-10 check digit (GS1 General Specifications §7.9.1)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def _with_check(digits: str) -> str:
    return digits + _check_digit(digits)


def _encode(component: str) -> str:
    return component.translate(_DL_ENCODE)


def _chars(component: str) -> int:
    """Length of a URN component, counting a %-escape as one character."""
    return len(_ESCAPE.sub("_", component))


@dataclass(frozen=True, slots=True)
class _EpcScheme:
    """The body of one EPC URN scheme and how it becomes a Digital Link path."""

    body: re.Pattern[str]
    key_digits: int | None  # company prefix + reference digits, when fixed
    path: Callable[[re.Match[str]], str]

    def convert(self, body: str) -> str | None:
        match = self.body.fullmatch(body)
        if match is None:
            return None
        key = match["cp"] + match["ref"]
        if self.key_digits is not None and len(key) != self.key_digits:
            return None
        if self.key_digits is None and _chars(key) > _MAX_ALPHANUMERIC_KEY:
            return None
        return _DIGITAL_LINK + self.path(match)


def _scheme(
    ref: str, tail: str, key_digits: int | None, path: Callable[[re.Match[str]], str]
) -> _EpcScheme:
    return _EpcScheme(re.compile(rf"(?P<cp>\d{{6,12}})\.(?P<ref>{ref}){tail}"), key_digits, path)


def _gtin(m: re.Match[str]) -> str:
    """Indicator digit, company prefix, rest of the reference, check digit: a GTIN-14 or SSCC."""
    return _with_check(m["ref"][:1] + m["cp"] + m["ref"][1:])


def _key(m: re.Match[str]) -> str:
    """Company prefix and reference with their check digit (GLN, GSRN, GDTI...)."""
    return _with_check(m["cp"] + m["ref"])


def _serial(m: re.Match[str]) -> str:
    return _encode(m["tail"])


def _sgln(m: re.Match[str]) -> str:
    # the GLN extension "0" stands for the GLN itself
    return f"414/{_key(m)}" if m["tail"] == "0" else f"414/{_key(m)}/254/{_serial(m)}"


def _tail(most: int, least: int = 1) -> str:
    return rf"\.(?P<tail>{_URN_CHAR}{{{least},{most}}})"


_ITEM = r"\d{1,7}"  # indicator digit + item reference: 13 digits with the company prefix
_DIGITS = r"\d{0,6}"  # 12 digits with the company prefix
_NUMBER = r"\.(?P<tail>\d{1,12})"
_PIECE_TOTAL = r"\.(?P<piece>\d{2})\.(?P<total>\d{2})"
_ANY = r"\.\*"  # the whole class, in an ID pattern
_ALNUM, _CPI = f"{_URN_CHAR}+", f"{_CPI_CHAR}+"

# "kind:scheme" of an EPC URN → syntax of its body and the Digital Link path it becomes.
_EPC_SCHEMES: Mapping[str, _EpcScheme] = {
    "id:sgtin": _scheme(_ITEM, _tail(20), 13, lambda m: f"01/{_gtin(m)}/21/{_serial(m)}"),
    "id:sscc": _scheme(r"\d{5,11}", "", 17, lambda m: "00/" + _gtin(m)),
    "id:sgln": _scheme(_DIGITS, _tail(20), 12, _sgln),
    # a leading zero leaves the check digit alone: GRAI = 0 + key + check digit + serial
    "id:grai": _scheme(_DIGITS, _tail(16), 12, lambda m: f"8003/0{_key(m)}{_serial(m)}"),
    "id:giai": _scheme(_ALNUM, "", None, lambda m: f"8004/{m['cp']}{_encode(m['ref'])}"),
    "id:gsrn": _scheme(r"\d{5,11}", "", 17, lambda m: f"8018/{_key(m)}"),
    "id:gsrnp": _scheme(r"\d{5,11}", "", 17, lambda m: f"8017/{_key(m)}"),
    "id:gdti": _scheme(_DIGITS, _tail(17, 0), 12, lambda m: f"253/{_key(m)}{_serial(m)}"),
    "id:cpi": _scheme(_CPI, _NUMBER, None, lambda m: f"8010/{m['cp']}{m['ref']}/8011/{m['tail']}"),
    "id:sgcn": _scheme(_DIGITS, _NUMBER, 12, lambda m: f"255/{_key(m)}{m['tail']}"),
    "id:ginc": _scheme(_ALNUM, "", None, lambda m: f"401/{m['cp']}{_encode(m['ref'])}"),
    "id:gsin": _scheme(r"\d{4,10}", "", 16, lambda m: f"402/{_key(m)}"),
    "id:itip": _scheme(
        _ITEM, _PIECE_TOTAL + _tail(20), 13,
        lambda m: f"8006/{_gtin(m)}{m['piece']}{m['total']}/21/{_serial(m)}",
    ),
    "id:upui": _scheme(_ITEM, _tail(28), 13, lambda m: f"01/{_gtin(m)}/235/{_serial(m)}"),
    "id:pgln": _scheme(_DIGITS, "", 12, lambda m: f"417/{_key(m)}"),
    "class:lgtin": _scheme(_ITEM, _tail(20), 13, lambda m: f"01/{_gtin(m)}/10/{_serial(m)}"),
    "idpat:sgtin": _scheme(_ITEM, _ANY, 13, lambda m: f"01/{_gtin(m)}"),
    "idpat:grai": _scheme(_DIGITS, _ANY, 12, lambda m: f"8003/0{_key(m)}"),
    "idpat:gdti": _scheme(_DIGITS, _ANY, 12, lambda m: f"253/{_key(m)}"),
    "idpat:sgcn": _scheme(_DIGITS, _ANY, 12, lambda m: f"255/{_key(m)}"),
    "idpat:cpi": _scheme(_CPI, _ANY, None, lambda m: f"8010/{m['cp']}{m['ref']}"),
    "idpat:itip": _scheme(
        _ITEM, _PIECE_TOTAL + _ANY, 13, lambda m: f"8006/{_gtin(m)}{m['piece']}{m['total']}"
    ),
    "idpat:upui": _scheme(_ITEM, _ANY, 13, lambda m: f"01/{_gtin(m)}"),
}  # fmt: skip
_EPC_URN = re.compile(r"urn:epc:(?P<scheme>(?:id|idpat|class):[a-z]+):(?P<body>.+)")


def _epc_urn_to_digital_link(uri: str) -> str | None:
    match = _EPC_URN.fullmatch(uri)
    if match is None:
        return None
    scheme = _EPC_SCHEMES.get(match["scheme"])
    return None if scheme is None else scheme.convert(match["body"])


# ---------------------------------------------------------------------------
# Constrained canonical Digital Link URIs

_HTTP_URI = re.compile(r"https?://[^/?#]*(?P<path>/[^?#]*)(?:\?[^#]*)?")
_KEY_ALIASES = {
    "gtin": "01", "itip": "8006", "cpid": "8010", "gln": "414", "party": "417", "gsrnp": "8017",
    "gsrn": "8018", "gcn": "255", "sscc": "00", "gdti": "253", "ginc": "401", "gsin": "402",
    "grai": "8003", "giai": "8004",
}  # fmt: skip
_QUALIFIER_ALIASES = {"cpv": "22", "lot": "10", "ser": "21"}
_CPV, _BATCH, _SERIAL = "22", "10", "21"

# Digital Link path characters: a %-escape or a character allowed raw.
_DL_CHAR = r"(?:%[0-9A-Fa-f]{2}|[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A])"
_CPI_DL_CHAR = r"(?:%[0-9A-Fa-f]{2}|[#\-0-9A-Z])"


# Primary key → syntax of its value and the qualifier sets a constrained URI may keep.
_KEYS: Mapping[str, tuple[re.Pattern[str], tuple[tuple[str, ...], ...]]] = {
    "00": (re.compile(r"\d{18}"), ((),)),
    "01": (re.compile(r"\d{14}"), ((), (_SERIAL,), (_BATCH,), ("235",))),
    "253": (re.compile(rf"\d{{13}}{_DL_CHAR}{{0,17}}"), ((),)),
    "255": (re.compile(r"\d{13,25}"), ((),)),
    "401": (re.compile(f"{_DL_CHAR}{{0,30}}"), ((),)),
    "402": (re.compile(r"\d{17}"), ((),)),
    "414": (re.compile(r"\d{13}"), ((), ("254",))),
    "417": (re.compile(r"\d{13}"), ((),)),
    "8003": (re.compile(rf"\d{{14}}{_DL_CHAR}{{0,16}}"), ((),)),
    "8004": (re.compile(f"{_DL_CHAR}{{0,30}}"), ((),)),
    "8006": (re.compile(r"\d{18}"), ((), (_SERIAL,), (_BATCH,))),
    "8010": (re.compile(f"{_CPI_DL_CHAR}{{0,30}}"), ((), ("8011",))),
    "8017": (re.compile(r"\d{18}"), ((),)),
    "8018": (re.compile(r"\d{18}"), ((),)),
}
_QUALIFIER_SYNTAX: Mapping[str, re.Pattern[str]] = {
    _SERIAL: re.compile(f"{_DL_CHAR}{{0,20}}"),
    _BATCH: re.compile(f"{_DL_CHAR}{{0,20}}"),
    "235": re.compile(f"{_DL_CHAR}{{0,28}}"),
    "254": re.compile(f"{_DL_CHAR}{{0,20}}"),
    "8011": re.compile(r"\d{0,12}"),
}
_KEY_VALUE_START = re.compile(r"\d{4}.")  # a key value opens with (part of) a company prefix
_GTIN_SHORT_LENGTHS = (8, 12, 13)  # GTIN-8/-12/-13, left-padded to 14 digits


def _constrain_digital_link(uri: str) -> str | None:
    """The constrained canonical form of an http(s) Digital Link URI, or ``None``."""
    match = _HTTP_URI.fullmatch(uri)
    if match is None:
        return None
    segments = match["path"].split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()  # one trailing slash
    # The first primary key starts the identifier; a custom domain's own path
    # before it goes with the domain (rule 18 (I): the domain becomes id.gs1.org).
    start = next((i for i, s in enumerate(segments) if _KEY_ALIASES.get(s, s) in _KEYS), None)
    if start is None or (len(segments) - start) % 2:
        return None
    key, value = _KEY_ALIASES.get(segments[start], segments[start]), segments[start + 1]
    if not _KEY_VALUE_START.match(value):
        return None
    qualifiers = segments[start + 2 :: 2]
    pairs = {
        _QUALIFIER_ALIASES.get(a, a): v
        for a, v in zip(qualifiers, segments[start + 3 :: 2], strict=True)
    }
    if len(pairs) != len(qualifiers):
        return None  # a repeated qualifier
    pairs.pop(_CPV, None)  # rule 18 (III): no CPV, and a serial makes the batch redundant
    if _SERIAL in pairs:
        pairs.pop(_BATCH, None)
    if key == "01" and value.isdigit() and len(value) in _GTIN_SHORT_LENGTHS:
        value = value.zfill(14)
    syntax, qualifier_sets = _KEYS[key]
    if not syntax.fullmatch(value) or tuple(pairs) not in qualifier_sets:
        return None
    if not all(_QUALIFIER_SYNTAX[ai].fullmatch(v) for ai, v in pairs.items()):
        return None
    return _DIGITAL_LINK + "/".join([key, value, *(f"{ai}/{v}" for ai, v in pairs.items())])


def digital_link(uri: str) -> str | None:
    """The constrained canonical GS1 Digital Link URI for an EPC URN or Digital Link, else ``None``.

    >>> digital_link("urn:epc:id:sgtin:0614141.107346.2018")
    'https://id.gs1.org/01/10614141073464/21/2018'
    >>> digital_link("https://example.com/gtin/9506000134352/lot/A1/ser/7?17=261231")
    'https://id.gs1.org/01/09506000134352/21/7'
    """
    if uri.startswith("urn:epc:"):
        return _epc_urn_to_digital_link(uri)
    if uri.startswith(("http://", "https://")):
        return _constrain_digital_link(uri)
    return None


@lru_cache(maxsize=_CACHED_VALUES)
def canonical_value(text: str) -> str:
    """Canonical form of a (stripped, non-time) value: CBV Web URI, number, Digital Link."""
    text = canonical_number(cbv_urn_to_uri(text))
    return digital_link(text) or text
