"""A small world of events for the rates' examples: two packs, their lives, a lot chain.

:func:`example_facts` folds fourteen events into :class:`~trace.rates_facts.RateFacts`
without a database, so that every rate function can show what it returns (numpydoc
examples, run under ``--doctest-modules``). The story, in China Standard Time:

* 2022: battery maker ``bm-01`` commissions an LFP pack ``P1`` (400 kg) and an NCM811
  pack ``P2`` (450 kg); automaker ``am-01`` installs both;
* 2025: ``P1`` retires and collector ``col-01`` collects it at 398 kg; recycler ``rec-01``
  dismantles it into black mass, copper scrap and steel scrap, and refines the black mass
  into lithium carbonate; scrap processor ``scr-01`` smelts the copper;
* 2025: ``P2`` retires, cascade operator ``cas-01`` takes it in and re-codes it ``R2``.
"""

from __future__ import annotations

from typing import Any, Final

from trace.rates_facts import RateFacts

__all__ = ["P1", "P2", "R2", "example_facts"]

P1: Final = "001PB1A0000001E390000042"
P2: Final = "001PE1A0000001E390000043"
R2: Final = "T01PE1A0000001G3C0000001"
_ROLES: Final = {
    "bm-01": "battery_maker",
    "am-01": "automaker",
    "col-01": "collector",
    "cas-01": "cascade_operator",
    "rec-01": "recycler",
    "scr-01": "scrap_processor",
}
_BM, _CU, _ST, _LI, _CR = (  # new_lot_id(random.Random(n)) for n in 1..5
    "LOT-NFCB6HGGNV6JT",
    "LOT-KBAXBT7QBTKVJ",
    "LOT-XZFPEY41NVYJ8",
    "LOT-QE9V6YWKFJP9B",
    "LOT-52ZCQFEGDJ58N",
)


def _lot(lot_id: str, material: str, kg: float, **content: float) -> dict[str, Any]:
    return {"lot": {"id": lot_id, "material": material, "mass_kg": kg, "content_kg": content}}


_EVENTS: Final[tuple[tuple[str, str, str, str, dict[str, Any]], ...]] = (
    ("commission", "bm-01", "350000", "2022-03-01", {"item": P1, "composition": {
        "chemistry": "LFP", "energy_kwh": 60.0, "mass_kg": 400.0, "estimated": False,
        "basis": "example", "content_kg": {"Li": 6.0, "Cu": 20.0, "Al": 35.0}}}),
    ("commission", "bm-01", "350000", "2022-03-02", {"item": P2, "composition": {
        "chemistry": "NCM811", "energy_kwh": 70.0, "mass_kg": 450.0, "estimated": False,
        "basis": "example", "content_kg": {"Li": 5.0, "Ni": 30.0, "Co": 4.0}}}),
    ("install", "am-01", "440000", "2022-05-01", {"item": P1, "vin": "LGXCE4CB5N0000001"}),
    ("install", "am-01", "440000", "2022-05-02", {"item": P2, "vin": "LGXCE4CB5N0000002"}),
    ("retire", "am-01", "440000", "2025-02-01", {"item": P1, "reason": "worn"}),
    ("collect", "col-01", "440000", "2025-02-10", {"item": P1, "mass_kg": 398.0}),
    ("dismantle", "rec-01", "430000", "2025-03-01", {"item": P1, "mass_kg": 398.0, "outputs": [
        _lot(_BM, "black_mass", 150.0, Li=6.0), _lot(_CU, "copper_scrap", 20.0, Cu=19.6),
        _lot(_ST, "steel_scrap", 70.0)]}),
    ("recycle", "rec-01", "430000", "2025-03-02", {"inputs": [{"item": _BM, "mass_kg": 150.0}],
        "outputs": [_lot(_LI, "lithium_carbonate", 28.8, Li=5.4)]}),
    ("lot_smelt", "scr-01", "430000", "2025-04-15", {"inputs": [{"item": _CU, "mass_kg": 20.0}],
        "outputs": [_lot(_CR, "copper_scrap", 19.4, Cu=19.0)]}),
    ("retire", "am-01", "440000", "2025-05-01", {"item": P2, "reason": "vehicle scrapped"}),
    ("accept", "cas-01", "320000", "2025-05-03", {"handover": "h-1", "items": [P2]}),
    ("repurpose", "cas-01", "320000", "2025-06-01", {"item": P2, "new_code": R2,
        "new_use": "energy_storage"}),
)  # fmt: skip


def example_facts() -> RateFacts:
    """The facts of the example world (see the module), as if read from a log.

    Examples
    --------
    >>> facts = example_facts()
    >>> sorted(facts.phys), facts.root(R2) == P2, len(facts.lots)
    (['001PB1A0000001E390000042', '001PE1A0000001E390000043'], True, 5)
    """
    facts = RateFacts(role_of=lambda actor: _ROLES.get(actor, ""), resolve=lambda seqs: {})
    for seq, (kind, actor, region, day, data) in enumerate(_EVENTS, start=1):
        when = f"{day}T10:00:00+08:00"
        facts.add(seq, f"event-{seq}", kind, actor, region, when, data)
    return facts
