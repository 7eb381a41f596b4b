"""GB/T 34014-2017 traction-battery codes: parse, check, generate, re-code for cascade use.

GB/T 34014-2017 §4.2 (汽车动力蓄电池编码规则) codes packs (P), modules (M) and cells (C).
The full form has 24 characters (positions 1-based; domain.md §1.2)::

    1-3    manufacturer code (厂商代码)          A-Z 0-9, assigned by the filing system
    4      product type                           P pack, M module, C cell
    5      battery type                           A-G or Z (B = LFP, E = ternary)
    6-7    specification code (规格代码)           A-Z 0-9
    8-14   traceability code (追溯信息代码)         A-Z 0-9 ("extension structure 1")
    15-17  production date: year, month, day      one shared character table
    18-24  serial within the production day       0000001-9999999

Cascade-use (梯级利用) products are re-coded under the same rules *without* the traceability
block, and the original code is kept (§4.2; domain.md §1.4). The re-code has 19 characters,
following the Catena-X TractionBatteryCode pattern::

    1-3 manufacturer, 4 product type, 5 battery type, 6-7 specification,
    8-10 production date, 11-17 serial, 18 'R', 19 a product-type letter

What the trailing product-type letter means is not confirmed by a text of the standard;
suyuan writes the product type of the original item there (:func:`recode_for_cascade`) and
keeps the full link to the original code in :class:`CascadeRecode`.

Date characters (domain.md §1.3): values 1-9 are '1'-'9', then A=10 ... H=17, J=18 ... N=22,
P=23, R=24, S=25, T=26 (I, O, Q never); year = 2010 + value. Two published readings disagree
on values 27-31 (days 27-31, years 2037-2041): *with U* (27=U, 28=V, 29=W, 30=X, 31=Y; the
Catena-X pattern) and *without U* (27=V, 28=W, 29=X, 30=Y, 31='0'). suyuan accepts both,
returns every plausible date and reports the field as ambiguous; it never picks one silently.

Lowercase is refused, with the position of every lowercase character: the standard's
characters are digits and capital letters, and a code is an identity stored verbatim, so two
spellings of one code would be two identities.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import random
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeVar

from schemas.errors import AmbiguousDate, CodeIssue, InvalidCode

__all__ = [
    "CASCADE_LENGTH",
    "CASCADE_MARKER",
    "FIELD_POSITIONS",
    "FULL_LENGTH",
    "SERIAL_MAX",
    "YEAR_BASE",
    "BatteryCode",
    "BatteryType",
    "CascadeRecode",
    "CodeCheck",
    "CodeForm",
    "CodeIssue",
    "DateReading",
    "ProductType",
    "check_code",
    "code_is_valid",
    "generate_code",
    "parse_code",
    "product_type_of",
    "recode_for_cascade",
]

FULL_LENGTH: Final = 24
CASCADE_LENGTH: Final = 19
CASCADE_MARKER: Final = "R"
YEAR_BASE: Final = 2010
SERIAL_MAX: Final = 9_999_999
_DATE_FIELD: Final = "production_date"
_UNAMBIGUOUS_MAX: Final = 26
_ALNUM: Final = string.digits + string.ascii_uppercase
_DATE_CHARS: Final = "123456789ABCDEFGHJKLMNPRST"  # values 1..26; I, O and Q are never used
# First year a simulated code is dated: GB/T 34014-2017 took effect on 2018-02-01.
_GENERATED_FIRST_YEAR: Final = 2018
_E = TypeVar("_E", bound=StrEnum)


class ProductType(StrEnum):
    """Position 4: what the code identifies."""

    PACK = "P"
    MODULE = "M"
    CELL = "C"

    @property
    def label(self) -> str:
        """The English name: ``pack``, ``module`` or ``cell``."""
        return self.name.lower()


class BatteryType(StrEnum):
    """Position 5: the battery type letter (A-G or Z)."""

    # The letter set A-G, Z and the readings of B, E and Z are confirmed (domain.md §1.2).
    # The readings of A, C, D, F and G are commonly quoted but not confirmed against the
    # standard's table; `confirmed` says which is which.
    NIMH = "A"  # 镍氢 nickel-metal hydride (unconfirmed reading)
    LFP = "B"  # 磷酸铁锂 lithium iron phosphate
    LMO = "C"  # 锰酸锂 lithium manganese oxide (unconfirmed reading)
    LCO = "D"  # 钴酸锂 lithium cobalt oxide (unconfirmed reading)
    TERNARY = "E"  # 三元 ternary (NCM / NCA)
    SUPERCAPACITOR = "F"  # 超级电容 (unconfirmed reading)
    LTO = "G"  # 钛酸锂 lithium titanate (unconfirmed reading)
    OTHER = "Z"  # 其他

    @property
    def confirmed(self) -> bool:
        """Whether the meaning of this letter is confirmed by a primary source."""
        return self.value in "BEZ"


class CodeForm(StrEnum):
    """The two layouts: the full 24-character code and the 19-character cascade-use re-code."""

    FULL = "full"
    CASCADE = "cascade"


class DateReading(StrEnum):
    """The two published readings of date values 27-31."""

    WITH_U = "with-u"  # 27=U 28=V 29=W 30=X 31=Y (Catena-X pattern, EVE decoder)
    WITHOUT_U = "without-u"  # 27=V 28=W 29=X 30=Y 31=0 (NIO test generator)


_EXTRA_DATE_CHARS: Final[Mapping[DateReading, str]] = {
    DateReading.WITH_U: "UVWXY",
    DateReading.WITHOUT_U: "VWXY0",
}
_AMBIGUOUS_CHARS: Final = frozenset("UVWXY0")
_LAST_YEAR: Final = YEAR_BASE + _UNAMBIGUOUS_MAX + len(_EXTRA_DATE_CHARS[DateReading.WITH_U])

# Field name -> (first, last) 1-based positions, per form.
FIELD_POSITIONS: Final[Mapping[CodeForm, Mapping[str, tuple[int, int]]]] = {
    CodeForm.FULL: {
        "manufacturer": (1, 3),
        "product_type": (4, 4),
        "battery_type": (5, 5),
        "spec": (6, 7),
        "trace_code": (8, 14),
        "production_date": (15, 17),
        "serial": (18, 24),
    },
    CodeForm.CASCADE: {
        "manufacturer": (1, 3),
        "product_type": (4, 4),
        "battery_type": (5, 5),
        "spec": (6, 7),
        "production_date": (8, 10),
        "serial": (11, 17),
        "cascade_marker": (18, 18),
        "cascade_suffix": (19, 19),
    },
}

# Field name -> (allowed characters, what to call the field, how to describe what is allowed).
_CHAR_RULES: Final[Mapping[str, tuple[str, str, str]]] = {
    "manufacturer": (_ALNUM, "manufacturer code", "A-Z, 0-9"),
    "product_type": ("PMC", "product type", "P pack, M module, C cell"),
    "battery_type": ("ABCDEFGZ", "battery type", "A-G or Z"),
    "spec": (_ALNUM, "specification code", "A-Z, 0-9"),
    "trace_code": (_ALNUM, "traceability code", "A-Z, 0-9"),
    "serial": (string.digits, "serial", "0-9"),
    "cascade_marker": (CASCADE_MARKER, "cascade-use marker", "R"),
    "cascade_suffix": ("PMC", "cascade-use product type", "P, M or C"),
}


@dataclass(frozen=True, slots=True)
class BatteryCode:
    """A valid GB/T 34014-2017 code, kept verbatim in ``text`` with its parsed fields.

    ``production_dates`` holds every plausible reading of the date (one unless ``ambiguous``
    names ``production_date``); ``trace_code`` is ``None`` and ``cascade_suffix`` is set for
    the cascade-use form.
    """

    text: str
    form: CodeForm
    manufacturer: str
    product_type: ProductType
    battery_type: BatteryType
    spec: str
    trace_code: str | None
    production_dates: tuple[dt.date, ...]
    serial: int
    ambiguous: tuple[str, ...] = ()
    cascade_suffix: ProductType | None = None

    @property
    def production_date(self) -> dt.date | None:
        """The production date when exactly one reading is plausible, else ``None``."""
        return self.production_dates[0] if len(self.production_dates) == 1 else None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The report on one candidate code: every error, notes on ambiguity, what could be read.

    Fields that could not be read are ``None``; ``code`` is set only when there is no error.
    """

    text: str
    errors: tuple[CodeIssue, ...]
    notes: tuple[CodeIssue, ...] = ()
    form: CodeForm | None = None
    manufacturer: str | None = None
    product_type: ProductType | None = None
    battery_type: BatteryType | None = None
    spec: str | None = None
    trace_code: str | None = None
    production_dates: tuple[dt.date, ...] = ()
    serial: int | None = None
    ambiguous: tuple[str, ...] = ()
    cascade_suffix: ProductType | None = None
    code: BatteryCode | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        """True when no error was found (ambiguity is not an error)."""
        return not self.errors

    @property
    def production_date(self) -> dt.date | None:
        """The production date when exactly one reading is plausible, else ``None``."""
        return self.production_dates[0] if len(self.production_dates) == 1 else None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready mapping of the report (dates in ISO 8601, enums by their letters)."""

        def value(item: StrEnum | None) -> str | None:
            return None if item is None else item.value

        date = self.production_date
        return {
            "code": self.text,
            "valid": self.valid,
            "errors": [{"position": i.position, "reason": i.reason} for i in self.errors],
            "notes": [{"position": i.position, "reason": i.reason} for i in self.notes],
            "form": value(self.form),
            "manufacturer": self.manufacturer,
            "product_type": value(self.product_type),
            "battery_type": value(self.battery_type),
            "spec": self.spec,
            "trace_code": self.trace_code,
            "production_date": None if date is None else date.isoformat(),
            "production_dates": [d.isoformat() for d in self.production_dates],
            "serial": self.serial,
            "ambiguous": list(self.ambiguous),
            "cascade_suffix": value(self.cascade_suffix),
        }


@dataclass(frozen=True, slots=True)
class CascadeRecode:
    """A cascade-use re-code and the original code it links to (kept forever, §4.2)."""

    code: BatteryCode
    original: BatteryCode


def _char_reason(ch: str, what: str, allowed: str, described: str) -> str:
    if ch.isascii() and ch.islower() and ch.upper() in allowed:
        return f"lowercase {ch!r} in the {what}; codes use capital letters ({ch.upper()!r})"
    return f"{ch!r} is not allowed in the {what} ({described})"


def _check_field(text: str, name: str, first: int, last: int) -> tuple[str | None, list[CodeIssue]]:
    allowed, what, described = _CHAR_RULES[name]
    issues = [
        CodeIssue(pos, _char_reason(text[pos - 1], what, allowed, described))
        for pos in range(first, last + 1)
        if text[pos - 1] not in allowed
    ]
    return (None if issues else text[first - 1 : last]), issues


def _date_value(ch: str, reading: DateReading) -> int | None:
    if ch and ch in _DATE_CHARS:
        return _DATE_CHARS.index(ch) + 1
    extra = _EXTRA_DATE_CHARS[reading]
    return _UNAMBIGUOUS_MAX + 1 + extra.index(ch) if ch and ch in extra else None


def _date_char(value: int, reading: DateReading | None, *, label: str) -> str:
    if value <= _UNAMBIGUOUS_MAX:
        return _DATE_CHARS[value - 1]
    if reading is None:
        raise AmbiguousDate(
            f"{label} is written differently by the two published readings of the "
            "GB/T 34014 date table; pass date_reading to choose one"
        )
    return _EXTRA_DATE_CHARS[reading][value - _UNAMBIGUOUS_MAX - 1]


_READING_NAMES: Final[Mapping[DateReading, str]] = {
    DateReading.WITH_U: "the table with U",
    DateReading.WITHOUT_U: "the table without U",
}
_DATE_DESCRIBED: Final = "1-9, A-H, J-N, P, R-T; U-Y and 0 have two readings"
_MONTH_DESCRIBED: Final = "1-9, A=10, B=11, C=12"


def _date_char_issue(ch: str, offset: int, position: int, values: list[int]) -> CodeIssue | None:
    what = ("year", "month", "day")[offset]
    allowed = _DATE_CHARS + "".join(_EXTRA_DATE_CHARS.values())
    if what == "month" and ch == "0":
        return CodeIssue(position, f"month 0 does not exist ({_MONTH_DESCRIBED})")
    if not values:
        return CodeIssue(position, _char_reason(ch, f"production {what}", allowed, _DATE_DESCRIBED))
    if what == "month" and max(values) > 12:
        return CodeIssue(position, f"{ch!r} is not a month ({_MONTH_DESCRIBED})")
    return None


def _check_date(
    text: str, first: int
) -> tuple[tuple[dt.date, ...], tuple[CodeIssue, ...], tuple[CodeIssue, ...], bool]:
    """Read the 3 date characters at ``first``; return (dates, errors, notes, ambiguous)."""
    return _read_date(text[first - 1 : first + 2], first)


# The report depends on the three characters and their position alone, and codes share
# production dates: a table of the dates seen so far.
@functools.lru_cache(maxsize=8192)
def _read_date(
    chars: str, first: int
) -> tuple[tuple[dt.date, ...], tuple[CodeIssue, ...], tuple[CodeIssue, ...], bool]:
    dates, errors, notes, ambiguous = _date_report(chars, first)
    return dates, tuple(errors), tuple(notes), ambiguous


def _date_report(
    chars: str, first: int
) -> tuple[tuple[dt.date, ...], list[CodeIssue], list[CodeIssue], bool]:
    values = {r: [_date_value(ch, r) for ch in chars] for r in DateReading}
    errors: list[CodeIssue] = []
    for offset, ch in enumerate(chars):
        readable = [v for r in DateReading if (v := values[r][offset]) is not None]
        issue = _date_char_issue(ch, offset, first + offset, readable)
        if issue is not None:
            errors.append(issue)
    if errors:
        return (), errors, [], False

    notes: list[CodeIssue] = []
    ambiguous_offsets = [offset for offset in (0, 2) if chars[offset] in _AMBIGUOUS_CHARS]
    for offset in ambiguous_offsets:
        what, shift = ("year", YEAR_BASE) if offset == 0 else ("day", 0)
        parts = []
        for reading in DateReading:
            v = values[reading][offset]
            words = "no value" if v is None else f"{what} {v + shift}"
            parts.append(f"{words} in {_READING_NAMES[reading]}")
        reason = f"{chars[offset]!r} is ambiguous: " + "; ".join(parts)
        notes.append(CodeIssue(first + offset, reason))

    dates: set[dt.date] = set()
    impossible: list[str] = []
    for reading in DateReading:
        year_v, month, day = values[reading]
        if year_v is None or month is None or day is None:
            continue
        year = YEAR_BASE + year_v
        try:
            dates.add(dt.date(year, month, day))
        except ValueError:
            impossible.append(f"{day} {calendar.month_name[month]} {year}")
    day_pos = first + 2
    ambiguous = bool(ambiguous_offsets)
    if not dates and not impossible:
        reason = f"year {chars[0]!r} and day {chars[2]!r} come from different readings of the table"
        return (), [CodeIssue(day_pos, reason)], notes, ambiguous
    if not dates:
        first_try, *others = dict.fromkeys(impossible)
        reason = f"impossible date: {first_try} does not exist"
        if others:
            reason = f"impossible date: neither {first_try} nor {others[0]} exists"
        return (), [CodeIssue(day_pos, reason)], notes, ambiguous
    for missing in impossible:
        notes.append(CodeIssue(day_pos, f"one reading gives {missing}, which does not exist"))
    return tuple(sorted(dates)), [], notes, ambiguous


def _enum_or_none(kind: type[_E], value: str | None) -> _E | None:
    return None if value is None else kind(value)


def _length_issue(n: int) -> CodeIssue:
    if n == 0:
        return CodeIssue(1, "empty code")
    expected = f"a full code has {FULL_LENGTH} characters, a cascade-use re-code {CASCADE_LENGTH}"
    if n > FULL_LENGTH:
        return CodeIssue(FULL_LENGTH + 1, f"{n} characters is too long; {expected}")
    return CodeIssue(n + 1, f"code ends after {n} characters; {expected}")


# Per form: the fields checked character by character, and one pattern that every code
# whose characters are all allowed matches (the date is checked on its own).
_READ_FIELDS: Final[Mapping[CodeForm, tuple[tuple[str, tuple[int, int]], ...]]] = {
    form: tuple((n, span) for n, span in fields.items() if n != _DATE_FIELD)
    for form, fields in FIELD_POSITIONS.items()
}


def _well_formed(form: CodeForm) -> re.Pattern[str]:
    parts = []
    for name, (first, last) in sorted(FIELD_POSITIONS[form].items(), key=lambda f: f[1]):
        chars = "." if name == _DATE_FIELD else f"[{re.escape(_CHAR_RULES[name][0])}]"
        parts.append(f"{chars}{{{last - first + 1}}}")
    return re.compile("".join(parts), re.DOTALL)


_WELL_FORMED: Final = {form: _well_formed(form) for form in CodeForm}


_FORMS: Final = {FULL_LENGTH: CodeForm.FULL, CASCADE_LENGTH: CodeForm.CASCADE}


def code_is_valid(text: str) -> bool:
    """Whether ``check_code(text).valid``, without writing the report.

    A code is valid when every character is allowed where it stands, the date
    characters give a real date and the serial is not 0: exactly the errors
    :func:`check_code` can find when no product type is expected.
    """
    form = _FORMS.get(len(text))
    if form is None or not _WELL_FORMED[form].fullmatch(text):
        return False
    fields = FIELD_POSITIONS[form]
    first = fields[_DATE_FIELD][0]
    if _check_date(text, first)[1]:
        return False
    start, end = fields["serial"]
    return int(text[start - 1 : end]) != 0


def product_type_of(text: str) -> ProductType | None:
    """The product type ``check_code(text)`` reads (position 4 of either form), or ``None``."""
    if len(text) not in _FORMS:
        return None
    letter = text[3]
    return ProductType(letter) if letter in _CHAR_RULES["product_type"][0] else None


def check_code(text: str, *, expect: ProductType | None = None) -> CodeCheck:
    """Check a candidate GB/T 34014-2017 code and report every problem; never raises.

    Parameters
    ----------
    text : str
        The code exactly as read (no trimming or case folding is applied).
    expect : ProductType, optional
        The product type the caller needs; another type is reported at position 4.

    Returns
    -------
    CodeCheck
        ``errors`` (sorted by position) and ``notes``, the fields that could be read, and
        ``code`` when the text is valid.

    Examples
    --------
    >>> check = check_code("001PB1A0000001H6F0000042")
    >>> check.valid, check.product_type, check.production_date
    (True, <ProductType.PACK: 'P'>, datetime.date(2027, 6, 15))
    >>> [str(issue) for issue in check_code("001pB1A0000001H6F0000042").errors]
    ["position 4: lowercase 'p' in the product type; codes use capital letters ('P')"]
    >>> check_code("001PB1A0000001H2V0000042").ambiguous
    ('production_date',)
    """
    if len(text) == FULL_LENGTH:
        form = CodeForm.FULL
    elif len(text) == CASCADE_LENGTH:
        form = CodeForm.CASCADE
    else:
        allowed, what, described = _ALNUM, "code", "A-Z, 0-9"
        issues = [_length_issue(len(text))]
        issues += [
            CodeIssue(pos, _char_reason(ch, what, allowed, described))
            for pos, ch in enumerate(text, start=1)
            if ch not in allowed
        ]
        return CodeCheck(text, tuple(sorted(issues, key=lambda i: i.position)))

    errors: list[CodeIssue] = []
    read: dict[str, str | None] = {}
    if _WELL_FORMED[form].fullmatch(text):
        read = {name: text[first - 1 : last] for name, (first, last) in _READ_FIELDS[form]}
    else:
        for name, (first, last) in _READ_FIELDS[form]:
            read[name], issues = _check_field(text, name, first, last)
            errors += issues
    date_first = FIELD_POSITIONS[form][_DATE_FIELD][0]
    dates, date_errors, notes, is_ambiguous = _check_date(text, date_first)
    errors += date_errors
    ambiguous = (_DATE_FIELD,) if is_ambiguous else ()

    serial = None if read["serial"] is None else int(read["serial"])
    if serial == 0:
        first = FIELD_POSITIONS[form]["serial"][0]
        errors.append(CodeIssue(first, "serial 0000000; serials run from 0000001 to 9999999"))
        serial = None
    product_type = _enum_or_none(ProductType, read["product_type"])
    if expect is not None and product_type is not None and product_type is not expect:
        reason = f"expected a {expect.label} ({expect.value}), found a {product_type.label}"
        errors.append(CodeIssue(4, f"{reason} ({product_type.value})"))
    battery_type = _enum_or_none(BatteryType, read["battery_type"])
    suffix = _enum_or_none(ProductType, read.get("cascade_suffix"))
    manufacturer, spec, trace_code = read["manufacturer"], read["spec"], read.get("trace_code")
    errors.sort(key=lambda issue: issue.position)
    code = None
    if not errors and manufacturer and product_type and battery_type and spec and serial:
        code = BatteryCode(
            text=text,
            form=form,
            manufacturer=manufacturer,
            product_type=product_type,
            battery_type=battery_type,
            spec=spec,
            trace_code=trace_code,
            production_dates=dates,
            serial=serial,
            ambiguous=ambiguous,
            cascade_suffix=suffix,
        )
    return CodeCheck(
        text,
        tuple(errors),
        tuple(notes),
        form=form,
        manufacturer=manufacturer,
        product_type=product_type,
        battery_type=battery_type,
        spec=spec,
        trace_code=trace_code,
        production_dates=dates,
        serial=serial,
        ambiguous=ambiguous,
        cascade_suffix=suffix,
        code=code,
    )


def parse_code(text: str, *, expect: ProductType | None = None) -> BatteryCode:
    """Parse a GB/T 34014-2017 code (full or cascade-use form).

    Parameters
    ----------
    text : str
        The code exactly as read.
    expect : ProductType, optional
        Refuse codes of another product type (e.g. a module where a pack is needed).

    Returns
    -------
    BatteryCode

    Raises
    ------
    InvalidCode
        With every problem found, each with its 1-based position and reason.

    Examples
    --------
    >>> code = parse_code("001PB1A0000001H6F0000042")
    >>> code.manufacturer, code.battery_type, code.trace_code, code.serial
    ('001', <BatteryType.LFP: 'B'>, '0000001', 42)
    >>> parse_code("001PB1A0000001H6F0000042", expect=ProductType.CELL)
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidCode: invalid battery code '001PB1A0000001H6F0000042': position 4: expected a cell (C), found a pack (P)
    """
    check = check_code(text, expect=expect)
    if check.code is None:
        raise InvalidCode(check.errors, text=text)
    return check.code


def _fixed(value: str, name: str, form: CodeForm) -> str:
    first, last = FIELD_POSITIONS[form][name]
    if len(value) != last - first + 1:
        what = _CHAR_RULES[name][1]
        reason = f"the {what} has {last - first + 1} characters, got {value!r}"
        raise InvalidCode([CodeIssue(first, reason)])
    return value


def _assemble(
    *,
    form: CodeForm,
    manufacturer: str,
    product_type: ProductType,
    battery_type: BatteryType,
    spec: str,
    trace_code: str,
    date: dt.date,
    serial: int,
    cascade_suffix: ProductType,
    date_reading: DateReading | None,
) -> str:
    positions = FIELD_POSITIONS[form]
    date_first = positions[_DATE_FIELD][0]
    if not 1 <= serial <= SERIAL_MAX:
        reason = f"serial {serial} is outside 1-{SERIAL_MAX}"
        raise InvalidCode([CodeIssue(positions["serial"][0], reason)])
    if not YEAR_BASE < date.year <= _LAST_YEAR:
        reason = f"year {date.year} cannot be written; the date table covers 2011-{_LAST_YEAR}"
        raise InvalidCode([CodeIssue(date_first, reason)])
    date_text = (
        _date_char(date.year - YEAR_BASE, date_reading, label=f"year {date.year}")
        + _date_char(date.month, None, label=f"month {date.month}")
        + _date_char(date.day, date_reading, label=f"day {date.day}")
    )
    head = _fixed(manufacturer, "manufacturer", form) + product_type + battery_type
    head += _fixed(spec, "spec", form)
    tail = f"{serial:07d}"
    if form is CodeForm.FULL:
        text = head + _fixed(trace_code, "trace_code", form) + date_text + tail
    else:
        text = head + date_text + tail + CASCADE_MARKER + cascade_suffix
    check = check_code(text)
    if not check.valid:
        raise InvalidCode(check.errors, text=text)
    return text


def generate_code(
    rng: random.Random,
    *,
    form: CodeForm = CodeForm.FULL,
    manufacturer: str | None = None,
    product_type: ProductType | None = None,
    battery_type: BatteryType | None = None,
    spec: str | None = None,
    trace_code: str | None = None,
    date: dt.date | None = None,
    serial: int | None = None,
    cascade_suffix: ProductType | None = None,
    date_reading: DateReading | None = None,
) -> str:
    """Generate a valid code for the simulator; fields not given are drawn from ``rng``.

    Parameters
    ----------
    rng : random.Random
        The only source of randomness: a seeded ``rng`` gives the same code every time.
    form : CodeForm
        Full 24-character code (default) or the 19-character cascade-use form.
    manufacturer, product_type, battery_type, spec, trace_code, date, serial, cascade_suffix
        Fixed field values; ``trace_code`` is ignored for the cascade form and
        ``cascade_suffix`` for the full form.
    date_reading : DateReading, optional
        Without it, random dates avoid the ambiguous values (days 27-31, years after 2036)
        and such a fixed ``date`` raises :class:`AmbiguousDate`; with it, every date may
        occur and is written in the chosen reading.

    Returns
    -------
    str
        A code that :func:`parse_code` accepts.

    Raises
    ------
    InvalidCode
        A fixed field cannot be written (wrong length or characters, serial out of range).
    AmbiguousDate
        ``date`` needs an ambiguous character and no ``date_reading`` was given.

    Examples
    --------
    >>> generate_code(random.Random(7)) == generate_code(random.Random(7))
    True
    >>> generate_code(random.Random(7), manufacturer="001", product_type=ProductType.PACK,
    ...               battery_type=BatteryType.LFP, spec="1A", trace_code="0000001",
    ...               date=dt.date(2024, 3, 9), serial=42)
    '001PB1A0000001E390000042'
    """
    alnum = _ALNUM
    last_value = _UNAMBIGUOUS_MAX if date_reading is None else _LAST_YEAR - YEAR_BASE
    if manufacturer is None:
        manufacturer = "".join(rng.choices(alnum, k=3))
    if product_type is None:
        product_type = rng.choice(list(ProductType))
    if battery_type is None:
        battery_type = rng.choice(list(BatteryType))
    if spec is None:
        spec = "".join(rng.choices(alnum, k=2))
    if trace_code is None and form is CodeForm.FULL:
        trace_code = "".join(rng.choices(alnum, k=7))
    if date is None:
        year = rng.randint(_GENERATED_FIRST_YEAR, YEAR_BASE + last_value)
        month = rng.randint(1, 12)
        day = rng.randint(1, min(last_value, calendar.monthrange(year, month)[1]))
        date = dt.date(year, month, day)
    if serial is None:
        serial = rng.randint(1, SERIAL_MAX)
    if cascade_suffix is None and form is CodeForm.CASCADE:
        cascade_suffix = rng.choice(list(ProductType))
    return _assemble(
        form=form,
        manufacturer=manufacturer,
        product_type=product_type,
        battery_type=battery_type,
        spec=spec,
        trace_code=trace_code or "",
        date=date,
        serial=serial,
        cascade_suffix=cascade_suffix or ProductType.PACK,
        date_reading=date_reading,
    )


def recode_for_cascade(
    original: BatteryCode | str,
    *,
    manufacturer: str,
    spec: str,
    date: dt.date,
    serial: int,
    product_type: ProductType | None = None,
    battery_type: BatteryType | None = None,
    date_reading: DateReading | None = None,
) -> CascadeRecode:
    """Re-code a repurposed pack, module or cell in the 19-character cascade-use form.

    GB/T 34014-2017 §4.2: a cascade-use product is coded again under the same rules, without
    the traceability block, and the original code is kept. The new code carries the
    cascade-use operator's manufacturer code, specification, re-code date and serial; its
    last character is the original's product type. One original gives one re-code; a
    product assembled from several re-coded parts is coded with :func:`generate_code`.

    Parameters
    ----------
    original : BatteryCode or str
        The code being replaced in use (full form, or an earlier cascade-use re-code).
    manufacturer, spec, date, serial
        The operator's manufacturer code, specification code, re-code date and serial.
    product_type, battery_type : optional
        Default to the original's (a pack may be re-used as a module, for example).
    date_reading : DateReading, optional
        Needed only when ``date`` falls on an ambiguous value (day 27-31, year after 2036).

    Returns
    -------
    CascadeRecode
        The new code and the original it links to.

    Raises
    ------
    InvalidCode
        The original is not a valid code, a field cannot be written, or the re-code date
        precedes every reading of the original's production date.

    Examples
    --------
    >>> link = recode_for_cascade("001PE1A0000001H6F0000042", manufacturer="T9X",
    ...                           spec="2B", date=dt.date(2031, 5, 1), serial=7)
    >>> link.code.text, link.code.form, link.original.text
    ('T9XPE2BM510000007RP', <CodeForm.CASCADE: 'cascade'>, '001PE1A0000001H6F0000042')
    """
    if isinstance(original, str):
        original = parse_code(original)
    if date < min(original.production_dates):
        first = FIELD_POSITIONS[CodeForm.CASCADE][_DATE_FIELD][0]
        earliest = min(original.production_dates).isoformat()
        reason = f"re-code date {date.isoformat()} precedes the original's production ({earliest})"
        raise InvalidCode([CodeIssue(first, reason)])
    text = _assemble(
        form=CodeForm.CASCADE,
        manufacturer=manufacturer,
        product_type=product_type or original.product_type,
        battery_type=battery_type or original.battery_type,
        spec=spec,
        trace_code="",
        date=date,
        serial=serial,
        cascade_suffix=original.product_type,
        date_reading=date_reading,
    )
    return CascadeRecode(code=parse_code(text), original=original)
