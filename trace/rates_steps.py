"""How transformations and lots become rate facts: the steps of EU 2023/1542 Annex XII and Art. 8.

A dismantling (GB/T 33598) or recycling, and a lot split, merge or smelt, becomes a
:class:`~trace.rates_model.Step` with its inputs (declared kg; a lot split or merged goes
in whole, at the mass left after what commissions took) and its output lots. Each new lot
gets its post-consumer share (Art. 8): 1 for what was made of waste batteries, 0 for a lot
created from outside the traced flow, and the inputs' shares weighted by their kg for what
was made of lots. :class:`StepFacts` holds these handlers for
:class:`~trace.rates_facts.RateFacts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from trace.rates_model import At, Lot, Phys, Step

__all__ = ["StepFacts"]


class StepFacts:
    """The lots and transformation steps of :class:`~trace.rates_facts.RateFacts`."""

    role_of: Callable[[str], str]
    phys: dict[str, Phys]
    lots: dict[str, Lot]
    steps: list[Step]

    def root(self, code: str) -> str:
        """The commissioned code of ``code`` (:meth:`RateFacts.root <trace.rates_facts.RateFacts.root>`)."""
        raise NotImplementedError

    def _phys(self, code: str) -> Phys | None:
        raise NotImplementedError

    def _ended(self, code: str, at: At) -> None:
        phys = self._phys(code)
        if phys is not None and phys.end is None and self.role_of(at.actor) == "recycler":
            phys.end = at

    def _outputs(
        self, at: At, ctype: str, records: Iterable[Mapping[str, Any]], pcs: float
    ) -> tuple[str, ...]:
        ids = []
        for record in records:
            lot = record["lot"]
            self.lots[str(lot["id"])] = Lot(lot, at, ctype, pcs)
            ids.append(str(lot["id"]))
        return tuple(ids)

    def _dismantle(self, at: At, data: Mapping[str, Any]) -> None:
        code = str(data["item"])
        parts = tuple(self.root(str(p)) for p in data.get("parts", ()))
        outputs = self._outputs(at, "dismantle", data.get("outputs", ()), 1.0)
        inputs: list[tuple[str, float, str | None]] = [
            (code, float(data["mass_kg"]), self.root(code))
        ]
        self.steps.append(Step(at, "dismantle", inputs, outputs, parts=parts))
        self._ended(code, at)

    def _recycle(self, at: At, data: Mapping[str, Any]) -> None:
        inputs: list[tuple[str, float, str | None]] = []
        weighted = total = 0.0
        for entry in data["inputs"]:
            code, kg = str(entry["item"]), float(entry["mass_kg"])
            if code.startswith("LOT-"):
                lot = self.lots.get(code)
                weighted += kg * (lot.pcs if lot is not None else 0.0)
                inputs.append((code, kg, None))
            else:
                weighted += kg
                inputs.append((code, kg, self.root(code)))
                self._ended(code, at)
            total += kg
        pcs = weighted / total if total else 0.0
        outputs = self._outputs(at, "recycle", data["outputs"], pcs)
        reagents = float(data.get("reagents_kg") or 0.0)
        self.steps.append(Step(at, "recycle", inputs, outputs, reagents=reagents))

    def _lot_create(self, at: At, data: Mapping[str, Any]) -> None:
        self._outputs(at, "lot_create", [data], 0.0)

    def _lot_inputs(
        self, codes: Iterable[str], declared: Mapping[str, float] | None
    ) -> tuple[list[tuple[str, float, str | None]], float]:
        inputs: list[tuple[str, float, str | None]] = []
        weighted = total = 0.0
        for code in codes:
            lot = self.lots.get(code)
            kg = declared[code] if declared is not None else (lot.remaining if lot else 0.0)
            weighted += kg * (lot.pcs if lot is not None else 0.0)
            total += kg
            inputs.append((code, kg, None))
        return inputs, (weighted / total if total else 0.0)

    def _relabel(
        self,
        at: At,
        kind: str,
        codes: list[str],
        outputs: Sequence[Mapping[str, Any]],
        declared: Mapping[str, float] | None = None,
        reagents: float = 0.0,
    ) -> None:
        inputs, pcs = self._lot_inputs(codes, declared)
        made = self._outputs(at, kind, outputs, pcs)
        self.steps.append(Step(at, kind, inputs, made, reagents=reagents))

    def _lot_split(self, at: At, data: Mapping[str, Any]) -> None:
        self._relabel(at, "lot_split", [str(data["lot"])], data["parts"])

    def _lot_merge(self, at: At, data: Mapping[str, Any]) -> None:
        self._relabel(at, "lot_merge", [str(c) for c in data["lots"]], [data["into"]])

    def _lot_smelt(self, at: At, data: Mapping[str, Any]) -> None:
        declared = {str(e["item"]): float(e["mass_kg"]) for e in data["inputs"]}
        reagents = float(data.get("reagents_kg") or 0.0)
        self._relabel(at, "lot_smelt", list(declared), data["outputs"], declared, reagents)
