"""The public battery passport and the Battery Pass document of an item.

* :func:`public_passport` — what a phone opens from a label (``/p/{code}``): identity
  read from the GB/T 34014-2017 code, chemistry, ratings, status in the EU vocabulary
  (Regulation (EU) 2023/1542 Annex XIII 4(c)) and suyuan's, the current holder's role and
  region only, earlier and later codes (GB/T 34014 §4.2), the label verdict, and an
  RFC 6962 inclusion proof of the item's latest event against a C2SP tlog-checkpoint.
* :func:`battery_pass` — the attribute groups of the Battery Pass data model v1.2
  (DIN DKE SPEC 99100), split as Annex XIII splits access: public attributes for
  everyone, the rest for persons with a legitimate interest, and a note naming what
  was withheld. Nothing is invented: unknown attributes are null or absent.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Final

from api.deps import Principal
from api.labels import LabelCheck
from ledger import Log
from ledger.entry import Entry
from ledger.merkle import leaf_hash
from schemas.codes import check_code
from trace.engine import Tracer
from trace.state import ItemKind, ItemState

__all__ = [
    "DATA_MODEL",
    "RESTRICTED",
    "UNITS",
    "battery_pass",
    "ensure_checkpoint",
    "has_legitimate_interest",
    "inclusion_proof",
    "label_verdict",
    "public_passport",
]

DATA_MODEL: Final = "Battery Pass data model v1.2 (DIN DKE SPEC 99100)"
PASSPORT_PATH: Final = "/p/"
_GRAMS_PER_KG: Final = 1000.0
_DECIMALS: Final = 3
# Second-life uses that make a repurposed pack a stationary battery (Battery Pass category).
_STATIONARY_USES: Final = frozenset(
    {"energy_storage", "backup_power", "charging_station", "swapping_station"}
)
UNITS: Final[Mapping[str, str]] = {
    "batteryMass": "kg",
    "ratedEnergy": "kWh",
    "materialWeight": "g",
    "recycledMass": "kg",
    "recycledShare": "% of the battery's content of that element",
    "stateOfCertifiedEnergy": "% (state of health at the last inspection)",
}
# Annex XIII: attributes only persons with a legitimate interest may see (dotted paths).
RESTRICTED: Final = (
    "materialComposition.batteryMaterials",
    "materialComposition.compositionBasis",
    "performanceAndDurability.stateOfCertifiedEnergy",
    "performanceAndDurability.stateOfHealthHistory",
    "circularity.dismantlingAndRemovalInformation",
    "circularity.recycledContentSources",
    "custodyChain",
)
_WITHHELD_NOTE: Final = (
    "Regulation (EU) 2023/1542 Annex XIII: these attributes are available only to persons "
    "with a legitimate interest (the battery's producer, holder, owner, auditors and "
    "authorities), with an API key."
)


def has_legitimate_interest(caller: Principal, item: ItemState) -> bool:
    """Administrators, auditors, and the item's producer, custodian or owner."""
    if caller.admin or caller.is_auditor():
        return True
    return caller.actor is not None and caller.actor.id in (
        item.producer,
        item.custodian,
        item.owner,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _compact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """``mapping`` without its ``None`` values and empty collections."""
    return {k: v for k, v in mapping.items() if v is not None and v != [] and v != {}}


def _data(entry: Entry) -> Mapping[str, Any]:
    data: Mapping[str, Any] = entry.body["data"]
    return data


# --- the proof ---


def ensure_checkpoint(log: Log, seq: int) -> None:
    """Sign a checkpoint if none covers entry ``seq`` (the caller holds the write lock)."""
    latest = log.store.checkpoint()
    if (latest is None or latest[0] <= seq) and log.signer is not None:
        log.checkpoint()


def inclusion_proof(log: Log, entry: Entry) -> dict[str, Any]:
    """RFC 6962 audit path of ``entry`` against the latest checkpoint, all bytes in base64."""
    latest = log.store.checkpoint()
    if latest is None or latest[0] <= entry.seq:
        return {"index": entry.seq, "entry": _b64(entry.raw), "checkpoint": None}
    size = latest[0]
    return {
        "index": entry.seq,
        "tree_size": size,
        "entry": _b64(entry.raw),
        "leaf_hash": _b64(leaf_hash(entry.raw)),
        "hashes": [_b64(h) for h in log.inclusion_proof(entry.seq, size)],
        "checkpoint": log.cosigned_checkpoint(size),
        "log_keys": [v.to_string() for v in log.log_verifiers()],
        "method": "RFC 6962 inclusion proof against a C2SP tlog-checkpoint (signed note)",
    }


# --- the public passport ---


def _identity(item: ItemState) -> dict[str, Any]:
    if item.kind is ItemKind.LOT:
        return _compact({"material": item.material, "grade": item.grade})
    check = check_code(item.id)
    battery = check.battery_type
    date = check.production_date
    return _compact(
        {
            "code_form": None if check.form is None else check.form.value,
            "product_type": None if check.product_type is None else check.product_type.label,
            "battery_type": None
            if battery is None
            else {
                "letter": battery.value,
                "name": battery.name.lower(),
                "confirmed": battery.confirmed,
            },
            "manufacturer_code": check.manufacturer,
            "production_date": None if date is None else date.isoformat(),
            "production_dates": [d.isoformat() for d in check.production_dates]
            if date is None
            else None,
        }
    )


def _earlier_lives(tracer: Tracer, item: ItemState) -> list[str]:
    """Codes this item had before, most recent first (cascade-use re-codes)."""
    lives: list[str] = []
    current: ItemState | None = item
    while current is not None and current.original is not None and current.original not in lives:
        lives.append(current.original)
        current = tracer.world.item(current.original)
    return lives


def label_verdict(label: LabelCheck) -> dict[str, Any]:
    """The passport's ``label`` member: what the scanned label's signature says."""
    return {
        "verdict": label.verdict.value,
        "genuine": label.genuine,
        "explanation": label.verdict.words,
        "key_id": label.key_id,
    }


def public_passport(tracer: Tracer, item: ItemState, *, proof: Mapping[str, Any]) -> dict[str, Any]:
    """The passport anyone may read, but for its ``label`` verdict (:func:`label_verdict`).

    No organisation is named but the label's signer key.
    """
    holder = tracer.world.actor(item.custodian)
    return {
        "code": item.id,
        "kind": item.kind.value,
        "identity": _identity(item),
        "chemistry": item.chemistry,
        "rated_energy_kwh": item.energy_kwh,
        "rated_capacity_ah": None,  # not recorded by any event: never estimated
        "status": {"eu": item.eu_status.value, "suyuan": item.status.value},
        "holder": {"role": None if holder is None else holder.role.value, "region": item.region},
        "earlier_lives": _earlier_lives(tracer, item),
        "successor": item.successor,
        "proof": dict(proof),
        "battery_pass": f"/v1/items/{item.id}/passport",
    }


# --- the Battery Pass document ---


def _root_commission(tracer: Tracer, item: ItemState) -> Mapping[str, Any] | None:
    """The commission event's data of the item's first life (re-codes carry its contents)."""
    seen: set[str] = set()
    current: ItemState | None = item
    while current is not None and current.id not in seen:
        seen.add(current.id)
        if current.original is None:
            entries = tracer.history(current.id)
            first = _data(entries[0]) if entries else None
            return first if first is not None and first.get("type") == "commission" else None
        current = tracer.world.item(current.original)
    return None


def _find_lot(node: Any, lot_id: str) -> Mapping[str, Any] | None:
    """The lot record ``{"id": lot_id, "mass_kg": ...}`` inside an event body."""
    if isinstance(node, Mapping):
        if node.get("id") == lot_id and "mass_kg" in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            found = _find_lot(child, lot_id)
            if found is not None:
                return found
    return None


def _lot_fractions(tracer: Tracer, lot_id: str) -> dict[str, float]:
    """Element mass fractions of a lot, from the event that created it.

    Taking material from a lot scales its mass and content alike, so the fractions at
    creation are the fractions of every kilogram later taken from it.
    """
    if tracer.world.item(lot_id) is None:
        return {}
    entries = tracer.history(lot_id)
    record = _find_lot(entries[0].body, lot_id) if entries else None
    if record is None or not record.get("mass_kg"):
        return {}
    mass = float(record["mass_kg"])
    return {el: float(kg) / mass for el, kg in record.get("content_kg", {}).items()}


def _recycled_content(
    tracer: Tracer, item: ItemState, materials: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Traced recycled content per element: kg taken from each source lot times its fractions."""
    recycled: dict[str, float] = {}
    for taken in materials:
        for element, fraction in _lot_fractions(tracer, str(taken["item"])).items():
            recycled[element] = recycled.get(element, 0.0) + float(taken["mass_kg"]) * fraction
    out = []
    for element, kg in sorted(recycled.items()):
        if kg <= 0:
            continue
        total = item.content_kg.get(element)
        share = round(100 * kg / total, 2) if total else None
        out.append(
            _compact(
                {
                    "recycledMaterial": element,
                    "recycledMass": round(kg, _DECIMALS),
                    "recycledShare": share,
                }
            )
        )
    return out


def _category(entries: Sequence[Entry], item: ItemState) -> str | None:
    """``ev`` for a first-life traction battery; ``stationary`` for a re-use as storage."""
    if item.original is None:
        return "ev"  # GB/T 34014 codes automotive traction batteries
    for entry in entries:
        data = _data(entry)
        if data.get("type") == "repurpose" and data.get("new_code") == item.id:
            return "stationary" if data.get("new_use") in _STATIONARY_USES else None
    return None


def _event_time(entries: Sequence[Entry], kind: str) -> str | None:
    for entry in entries:
        if _data(entry).get("type") == kind:
            return str(entry.body["event_time"])
    return None


def _general(
    tracer: Tracer, item: ItemState, entries: Sequence[Entry], base_url: str
) -> dict[str, Any]:
    identity = _identity(item)
    operator = tracer.world.actor(item.producer)
    return _compact(
        {
            "productIdentifier": item.id,
            "batteryPassportIdentifier": f"{base_url.rstrip('/')}{PASSPORT_PATH}{item.id}",
            "batteryCategory": _category(entries, item),
            "manufacturerInformation": _compact(
                {"manufacturerCode": identity.get("manufacturer_code")}
            ),
            "operatorInformation": None
            if operator is None
            else {"operatorIdentifier": operator.id, "operatorName": operator.name},
            "manufacturingDate": identity.get("production_date"),
            "batteryStatus": item.eu_status.value,
            "batteryMass": item.mass_kg,
            "puttingIntoService": _event_time(entries, "install"),
        }
    )


def _custody_chain(tracer: Tracer, entries: Sequence[Entry]) -> list[dict[str, Any]]:
    chain = []
    for entry in entries:
        actor = tracer.world.actor(str(entry.body["actor"]))
        chain.append(
            {
                "seq": entry.seq,
                "type": _data(entry).get("type"),
                "eventTime": entry.body["event_time"],
                "actor": entry.body["actor"],
                "actorRole": None if actor is None else actor.role.value,
                "region": entry.body.get("region"),
            }
        )
    return chain


def _soh_history(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    return [
        _compact(
            {
                "eventTime": entry.body["event_time"],
                "stateOfHealth": _data(entry).get("soh_pct"),
                "grade": _data(entry).get("grade"),
                "remainingCapacityKwh": _data(entry).get("remaining_capacity_kwh"),
            }
        )
        for entry in entries
        if _data(entry).get("type") == "inspect"
    ]


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for name in parents:
        doc = doc.setdefault(name, {})
    doc[last] = value


def _restricted(
    tracer: Tracer,
    item: ItemState,
    entries: Sequence[Entry],
    commission: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The legitimate-interest attributes that have a value, by dotted path."""
    composition = (commission or {}).get("composition") or {}
    materials = [
        {"materialName": el, "materialWeight": round(kg * _GRAMS_PER_KG, _DECIMALS)}
        for el, kg in sorted(item.content_kg.items())
    ]
    values = {
        "materialComposition.batteryMaterials": materials,
        "materialComposition.compositionBasis": _compact(
            {"estimated": composition.get("estimated"), "basis": composition.get("basis")}
        ),
        "performanceAndDurability.stateOfCertifiedEnergy": item.soh_pct,
        "performanceAndDurability.stateOfHealthHistory": _soh_history(entries),
        "circularity.dismantlingAndRemovalInformation": _compact(
            {"components": list(item.children)}
        ),
        "circularity.recycledContentSources": [
            {"lot": m["item"], "massTaken": m["mass_kg"]}
            for m in (commission or {}).get("materials", [])
        ],
        "custodyChain": _custody_chain(tracer, entries),
    }
    return {path: v for path, v in values.items() if v is not None and v != [] and v != {}}


def battery_pass(
    tracer: Tracer, item: ItemState, *, base_url: str, legitimate: bool
) -> dict[str, Any]:
    """The item's Battery Pass document; restricted attributes only if ``legitimate``."""
    entries = tracer.history(item.id)
    commission = _root_commission(tracer, item)
    materials = (commission or {}).get("materials", [])
    chemistry = None if item.chemistry is None else {"shortName": item.chemistry}
    doc: dict[str, Any] = {
        "dataModel": DATA_MODEL,
        "productIdentifier": item.id,
        "units": dict(UNITS),
        "generalProductInformation": _general(tracer, item, entries, base_url),
        "carbonFootprint": None,  # no declaration is recorded: never estimated
        "circularity": _compact(
            {
                "recycledContent": _recycled_content(tracer, item, materials),
                "endOfLifeInformation": _compact(
                    {
                        "lifecycleStage": item.status.value,
                        "originalBatteryIdentifier": item.original,
                        "successorBatteryIdentifier": item.successor,
                    }
                ),
            }
        ),
        "materialComposition": _compact({"batteryChemistry": chemistry}),
        "performanceAndDurability": _compact({"ratedEnergy": item.energy_kwh}),
        "labels": {
            "batteryPassportUrl": f"{base_url.rstrip('/')}{PASSPORT_PATH}{item.id}",
            "identifierScheme": "GB/T 34014-2017",
        },
    }
    restricted = _restricted(tracer, item, entries, commission)
    if legitimate:
        for path, value in restricted.items():
            _put(doc, path, value)
        doc["access"] = {"level": "legitimate-interest", "withheld": []}
    else:
        doc["access"] = {"level": "public", "withheld": sorted(restricted), "note": _WITHHELD_NOTE}
    return doc
