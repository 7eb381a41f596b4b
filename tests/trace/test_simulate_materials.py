"""How the simulator's battery makers take recycled material from the lots they hold."""

from __future__ import annotations

import copy
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.composition import Element
from trace.simulate_materials import PRODUCTS, HeldLot, MakerStock, take_recycled

TOLERANCE = 0.005


def _floor_kg(kg: float) -> float:
    return math.floor(kg * 1000) / 1000


def scan_every_lot(
    pack: dict[Element, float], lots: list[HeldLot], share: float, held_back: set[str]
) -> tuple[dict[str, float], dict[Element, float], list[str]]:
    """The plain reading of "oldest first": every element looks at every free lot in turn."""
    taken: dict[str, float] = {}
    brought: dict[Element, float] = {}
    emptied: list[str] = []
    free = [lot for lot in lots if lot.id not in held_back and not lot.consumed]
    for element in PRODUCTS:
        need = pack.get(element, 0.0) * share
        for lot in free:
            if need <= 0:
                break
            if lot.element is not element or lot.consumed:
                continue
            kg = _floor_kg(min(lot.remaining_kg, need / lot.fraction))
            if kg <= 0:
                continue
            left = max(lot.remaining_kg - kg, 0.0)
            lot.consumed = left <= lot.remaining_kg * TOLERANCE
            lot.remaining_kg = left
            taken[lot.id] = kg
            if lot.consumed:
                emptied.append(lot.id)
            brought[element] = brought.get(element, 0.0) + kg * lot.fraction
            need -= kg * lot.fraction
    return taken, brought, emptied


lot_specs = st.lists(
    st.tuples(
        st.sampled_from(list(PRODUCTS)),
        st.floats(0.05, 0.5),  # kg of the element per kg of lot
        st.floats(0.0005, 40.0),  # kg left in the lot
        st.booleans(),  # held back: its events not reported yet
    ),
    max_size=30,
)
packs = st.lists(
    st.dictionaries(st.sampled_from(list(PRODUCTS)), st.floats(0.0, 12.0)), min_size=1, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(lot_specs, packs, st.floats(0.0, 0.4))
def test_taking_from_the_queues_matches_scanning_every_lot(
    specs: list[tuple[Element, float, float, bool]],
    pack_list: list[dict[Element, float]],
    share: float,
) -> None:
    lots = [HeldLot(f"lot-{i}", e, f, kg) for i, (e, f, kg, _) in enumerate(specs)]
    held_back = {lot.id for lot, spec in zip(lots, specs, strict=True) if spec[3]}
    plain = copy.deepcopy(lots)
    stock = MakerStock()
    for lot in lots:
        stock.add(lot)
    for pack in pack_list:  # several packs in a row: the queues carry what earlier ones left
        expected = scan_every_lot(pack, plain, share, held_back)
        got = take_recycled(
            pack, stock, share, tolerance=TOLERANCE, held_back=held_back.__contains__
        )
        assert got == expected
        assert [(lot.remaining_kg, lot.consumed) for lot in lots] == [
            (lot.remaining_kg, lot.consumed) for lot in plain
        ]
        free = [lot for lot in plain if not lot.consumed and lot.id not in held_back]
        assert stock.any_free(held_back.__contains__) == bool(free)


def test_lots_are_taken_oldest_first_and_an_emptied_lot_leaves_the_stock() -> None:
    stock = MakerStock()
    old, new = HeldLot("old", Element.LI, 0.25, 1.0), HeldLot("new", Element.LI, 0.25, 5.0)
    stock.add(old)
    stock.add(new)
    # 0.5 kg Li at 0.25 kg per kg of lot: 2 kg of lot, all of the old one and 1 kg of the new.
    taken, brought, emptied = take_recycled({Element.LI: 1.0}, stock, 0.5, tolerance=TOLERANCE)
    assert taken == {"old": 1.0, "new": 1.0}
    assert brought == {Element.LI: 0.5}
    assert emptied == ["old"]
    assert [lot.id for lot in stock.lots(Element.LI)] == ["new"]
    assert new.remaining_kg == 4.0 and not new.consumed


def test_a_held_back_lot_is_passed_over_and_kept() -> None:
    stock = MakerStock()
    for lot in (HeldLot("late", Element.NI, 0.2, 2.0), HeldLot("on-time", Element.NI, 0.2, 2.0)):
        stock.add(lot)
    taken, _, emptied = take_recycled(
        {Element.NI: 0.4}, stock, 1.0, tolerance=TOLERANCE, held_back={"late"}.__contains__
    )
    assert taken == {"on-time": 2.0} and emptied == ["on-time"]
    # Emptied behind a lot still held back: out of the lots, though not yet off the queue.
    assert [lot.id for lot in stock.lots(Element.NI)] == ["late"]
    assert not stock.any_free({"late"}.__contains__)
    assert stock.any_free(lambda lot_id: False)


def test_an_element_the_maker_holds_no_lot_of_is_not_taken() -> None:
    stock = MakerStock()
    stock.add(HeldLot("li", Element.LI, 0.19, 3.0))
    taken, brought, _ = take_recycled(
        {Element.LI: 0.1, Element.CO: 2.0}, stock, 0.3, tolerance=TOLERANCE
    )
    assert set(taken) == {"li"} and set(brought) == {Element.LI}
    assert stock.least_fraction(Element.CO) == math.inf
