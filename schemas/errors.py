"""Errors raised by suyuan's data contracts (:mod:`schemas`).

::

    SchemaError (ValueError)
    ├── InvalidIdentifier       an identifier fails validation; ``errors`` lists every problem
    │   ├── InvalidCode         a GB/T 34014-2017 battery code
    │   └── InvalidLotId        a scrap-metal or material lot identifier
    ├── AmbiguousDate           a date to encode has two published encodings; none was chosen
    ├── InvalidRecord           a record built from outside data fails validation, field by field
    │   ├── InvalidLot          a lot (material, grade, masses, quality certificate)
    │   └── InvalidComposition  a pack composition
    ├── InvalidQuantity         a number is not finite or outside its range; ``field`` names it
    │   └── InvalidMass         a mass not in finite kilograms, or parts outweighing the whole
    ├── GradeMismatch           a grade's standard does not apply to the lot's material
    ├── UnknownChemistry        a battery chemistry suyuan does not know
    └── NoCompositionData       no published figures to estimate a composition for a chemistry

Every error derives from :class:`ValueError` on purpose: pydantic turns a ``ValueError`` raised
inside a validator into a ``ValidationError`` located at the field, so the same classes serve
plain functions and model validation alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from pydantic import ValidationError

__all__ = [
    "AmbiguousDate",
    "CodeIssue",
    "FieldIssue",
    "GradeMismatch",
    "InvalidCode",
    "InvalidComposition",
    "InvalidIdentifier",
    "InvalidLot",
    "InvalidLotId",
    "InvalidMass",
    "InvalidQuantity",
    "InvalidRecord",
    "NoCompositionData",
    "SchemaError",
    "UnknownChemistry",
]


@dataclass(frozen=True, slots=True)
class CodeIssue:
    """One problem in an identifier: the 1-based character position and the reason."""

    position: int
    reason: str

    def __str__(self) -> str:
        return f"position {self.position}: {self.reason}"


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One problem in a record: the field's dotted path (``certificate.number``) and the reason."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class SchemaError(ValueError):
    """Base class for every error the data contracts raise."""


class InvalidIdentifier(SchemaError):
    """Base for identifiers that fail validation; ``errors`` holds every problem found.

    ``text`` is the identifier as given, or ``None`` when one could not be put together
    (a field passed to a generator cannot be written).
    """

    kind = "identifier"

    def __init__(self, errors: Sequence[CodeIssue], *, text: str | None = None) -> None:
        self.errors = tuple(errors)
        self.text = text
        listed = "; ".join(str(issue) for issue in self.errors)
        named = self.kind if text is None else f"{self.kind} {text!r}"
        super().__init__(f"invalid {named}: {listed}")


class InvalidCode(InvalidIdentifier):
    """Raised when a GB/T 34014-2017 code fails validation or is not the expected product type."""

    kind = "battery code"


class InvalidLotId(InvalidIdentifier):
    """Raised when a lot identifier is malformed or its check character does not match."""

    kind = "lot id"


class AmbiguousDate(SchemaError):
    """Raised when asked to encode a date whose characters have two published readings.

    Values 27-31 of the GB/T 34014 date table (days 27-31, years 2037-2041) are written
    differently by different implementations; the caller must choose a reading.
    """


class InvalidRecord(SchemaError):
    """Base for records built from outside data; ``errors`` names each failing field."""

    kind = "record"

    def __init__(self, errors: Sequence[FieldIssue]) -> None:
        self.errors = tuple(errors)
        listed = "; ".join(str(issue) for issue in self.errors)
        super().__init__(f"invalid {self.kind}: {listed}")

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> Self:
        """Translate a pydantic ``ValidationError`` into this error, one issue per failing field."""
        issues = []
        for error in exc.errors(include_url=False):
            loc = [str(part) for part in error["loc"]]
            cause = (error.get("ctx") or {}).get("error")
            reason = str(cause) if isinstance(cause, SchemaError) else error["msg"]
            if isinstance(cause, InvalidQuantity):
                # The error names its field more precisely (content_kg[Li]) than pydantic can.
                if not loc or cause.field.startswith(loc[-1]):
                    loc[-1:] = [cause.field]
                reason = cause.reason
            issues.append(FieldIssue(".".join(loc) or "(record)", reason))
        return cls(issues)


class InvalidLot(InvalidRecord):
    """Raised by :func:`schemas.lots.load_lot` when lot data fails validation."""

    kind = "lot"


class InvalidComposition(InvalidRecord):
    """Raised by :func:`schemas.composition.load_composition` when composition data fails."""

    kind = "composition"


class InvalidQuantity(SchemaError):
    """Raised when a number is not finite or lies outside its range; ``field`` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class InvalidMass(InvalidQuantity):
    """Raised when a mass is not a finite number of kilograms in range, is given in another
    unit, or when the parts (element contents) weigh more than the whole."""


class GradeMismatch(SchemaError):
    """Raised when a grade's standard does not apply to the material it is given for."""


class UnknownChemistry(SchemaError):
    """Raised when a battery chemistry name is not one suyuan knows; ``name`` is the input."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class NoCompositionData(SchemaError):
    """Raised when no published figures exist to estimate a composition for a chemistry."""
