"""The facts the rates keep per battery, lot and transformation step (docs/metrics.md).

A :class:`Phys` is a physical battery: its commissioned GB/T 34014 code and, under any
later cascade re-code (GB/T 34014-2017 §4.2), the first events that count for the rates.
A :class:`Lot` keeps its element shares as created and its post-consumer share (EU
2023/1542 Art. 8); a :class:`Step` keeps a transformation's inputs and outputs (Annex XII).
Mass and composition stay as recorded, so a later correction applies to the whole history.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta, timezone
from itertools import repeat
from operator import truediv
from typing import Any, Final, NamedTuple

__all__ = [
    "CST", "ELEMENTS", "ZERO", "At", "Lot", "Phys", "Step", "Vec", "column_sums", "kind_of", "vec",
]  # fmt: skip

CST: Final = timezone(timedelta(hours=8), "CST")
ELEMENTS: Final = ("Li", "Ni", "Co", "Mn", "Cu", "Al", "Pb")
"""Elements of the recovery and recycled-content rates (Annex XII Part C, Art. 8)."""
_KINDS: Final = {"P": "pack", "M": "module", "C": "cell"}
ZERO: Final = (0.0,) * len(ELEMENTS)
_NOTHING: Final = ZERO  # the default of each element a content does not list
"""No kg of any element."""

Vec = tuple[float, ...]


class At(NamedTuple):
    """Where and when an event happened: log position, CST day ordinal, province, actor."""

    seq: int
    day: int
    region: str
    actor: str


def kind_of(code: str) -> str:
    """The item kind a battery code names (its 4th character), ``lot`` for a lot id.

    >>> kind_of("001PB1A0000001E390000042"), kind_of("LOT-NFCB6HGGNV6JT")
    ('pack', 'lot')
    """
    return "lot" if code.startswith("LOT-") else _KINDS.get(code[3:4], "cell")


def column_sums(vectors: Iterable[Sequence[float]]) -> list[float]:
    """Element-wise sums of element vectors (zeros for none).

    >>> column_sums([(1.0,) * 7, (0.5,) * 7])
    [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]
    """
    return list(map(sum, zip(ZERO, *vectors, strict=True)))


def vec(content: Mapping[str, Any] | None) -> Vec | None:
    """Element kg as a tuple in :data:`ELEMENTS` order (``None`` stays ``None``).

    >>> vec({"Li": 6.0, "Cu": 20.0, "graphite": 52.0})
    (6.0, 0.0, 0.0, 0.0, 20.0, 0.0, 0.0)
    """
    if content is None:
        return None
    return tuple(map(float, map(content.get, ELEMENTS, _NOTHING)))


class Phys:
    """A physical battery: its commissioned code and what happened to it under any code."""

    __slots__ = (
        "automaker",
        "c_at",
        "c_key",
        "chemistry",
        "code",
        "collect",
        "collect_key",
        "collect_kg",
        "content",
        "end",
        "energy",
        "i_at",
        "kind",
        "maker",
        "mass",
        "materials",
        "recycled",
        "repurpose",
        "retire",
    )

    def __init__(self, code: str, at: At, key: int, data: Mapping[str, Any]) -> None:
        comp = data.get("composition")
        self.code = code
        self.kind = kind_of(code)
        self.maker = at.actor
        self.c_at = at
        self.c_key = key
        mass = data.get("mass_kg")
        self.mass: float = float(mass if mass is not None else comp["mass_kg"] if comp else 0.0)
        self.content: Vec | None = None
        self.chemistry: str | None = None
        self.energy = 0.0
        if comp is not None:
            self.compose(comp)
        self.automaker: str | None = None
        self.i_at: At | None = None
        self.retire: At | None = None
        self.collect: At | None = None
        self.collect_key = 0
        self.collect_kg: float | None = None
        self.repurpose: At | None = None
        self.end: At | None = None
        self.recycled: Vec | None = None
        self.materials: tuple[tuple[str, float, Vec], ...] = ()  # lot, kg taken, element kg

    def compose(self, comp: Mapping[str, Any]) -> None:
        self.content = vec(comp.get("content_kg", {}))
        self.chemistry = sys.intern(str(comp["chemistry"]))  # a handful, shared
        self.energy = float(comp.get("energy_kwh") or 0.0)

    @property
    def kg(self) -> float:
        """The mass the rates count: as first collected (declared), else as commissioned."""
        return self.mass if self.collect_kg is None else self.collect_kg


class Lot:
    """A material or scrap lot: element kg and shares, and post-consumer share, as created."""

    __slots__ = ("at", "content", "ctype", "mass", "material", "pcs", "remaining", "share")

    def __init__(self, record: Mapping[str, Any], at: At, ctype: str, pcs: float) -> None:
        self.material = str(record["material"])
        self.mass = float(record["mass_kg"])
        self.content: Vec = vec(record.get("content_kg", {})) or ZERO
        self.share: Vec = (
            tuple(map(truediv, self.content, repeat(self.mass))) if self.mass else ZERO
        )
        self.pcs = pcs
        self.at = at
        self.ctype = ctype
        self.remaining = self.mass


class Step:
    """A transformation: inputs ``(code, kg, root or None for a lot)``, parts, output lots."""

    __slots__ = ("at", "inputs", "outputs", "parts", "reagents", "type")

    def __init__(
        self,
        at: At,
        kind: str,
        inputs: list[tuple[str, float, str | None]],
        outputs: tuple[str, ...],
        *,
        parts: tuple[str, ...] = (),
        reagents: float = 0.0,
    ) -> None:
        self.at = at
        self.type = kind
        self.inputs = inputs
        self.outputs = outputs
        self.parts = parts
        self.reagents = reagents
