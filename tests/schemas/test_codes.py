"""GB/T 34014-2017 codes: parsing, errors with positions, ambiguity, generation, re-codes."""

from __future__ import annotations

import datetime as dt
import random
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codes import (
    CASCADE_LENGTH,
    FIELD_POSITIONS,
    FULL_LENGTH,
    BatteryCode,
    BatteryType,
    CodeForm,
    DateReading,
    ProductType,
    check_code,
    code_is_valid,
    generate_code,
    parse_code,
    product_type_of,
    recode_for_cascade,
)
from schemas.errors import AmbiguousDate, CodeIssue, InvalidCode

# 001 maker, pack, LFP, spec 1A, trace 0000001, 2027-06-15 (H 6 F), serial 42.
PACK = "001PB1A0000001H6F0000042"
CASCADE = "001PB1AH6F0000042RM"
# The example value published with the Catena-X TractionBatteryCode 2.0.0 aspect model.
CATENA_X_EXAMPLE = "X12MCPM27KLPCLX2M2382320"
# The Catena-X pattern for both forms (domain.md §1.2, §1.4).
CATENA_X_PATTERN = re.compile(
    r"(^[A-Z0-9]{3}[PMC]{1}[A-GZ]{1}[A-Z0-9]{2}[A-Z0-9]{7}[1-9A-GH-NPR-Y]{1}[1-9A-C]{1}"
    r"[0-9A-GH-NPR-Y]{1}[0-9]{7}$)|(^[A-Z0-9]{3}[PMC]{1}[A-GZ]{1}[A-Z0-9]{2}[1-9A-GH-NPR-Y]{1}"
    r"[1-9A-C]{1}[0-9A-GH-NPR-Y]{1}[0-9]{7}[R]{1}[PMC]{1}$)"
)
WIDE_ALPHABET = string.ascii_uppercase + string.digits + string.ascii_lowercase + " -_/.#"


def with_date(year: str, month: str, day: str, base: str = PACK) -> str:
    return base[:14] + year + month + day + base[17:]


def field_of(form: CodeForm, position: int) -> str:
    for name, (first, last) in FIELD_POSITIONS[form].items():
        if first <= position <= last:
            return name
    raise AssertionError(position)


def read_back(code: BatteryCode) -> dict[str, object]:
    return {
        "manufacturer": code.manufacturer,
        "product_type": code.product_type,
        "battery_type": code.battery_type,
        "spec": code.spec,
        "trace_code": code.trace_code,
        "date": code.production_date,
        "serial": code.serial,
        "cascade_suffix": code.cascade_suffix,
    }


# --- parsing valid codes -------------------------------------------------------------------


def test_full_code_parses_into_its_fields() -> None:
    code = parse_code(PACK)
    assert code == BatteryCode(
        text=PACK,
        form=CodeForm.FULL,
        manufacturer="001",
        product_type=ProductType.PACK,
        battery_type=BatteryType.LFP,
        spec="1A",
        trace_code="0000001",
        production_dates=(dt.date(2027, 6, 15),),
        serial=42,
    )
    assert code.production_date == dt.date(2027, 6, 15)
    assert str(code) == PACK


def test_cascade_code_parses_without_traceability_block() -> None:
    code = parse_code(CASCADE)
    assert code.form is CodeForm.CASCADE
    assert code.trace_code is None
    assert code.cascade_suffix is ProductType.MODULE
    assert (code.manufacturer, code.spec, code.serial) == ("001", "1A", 42)
    assert code.production_date == dt.date(2027, 6, 15)


def test_catena_x_published_example_is_valid_with_an_ambiguous_year() -> None:
    check = check_code(CATENA_X_EXAMPLE)
    assert check.valid
    assert check.product_type is ProductType.MODULE
    assert check.ambiguous == ("production_date",)
    assert check.production_dates == (dt.date(2039, 2, 21), dt.date(2040, 2, 21))
    assert check.production_date is None
    assert check.notes == (
        CodeIssue(
            15, "'X' is ambiguous: year 2040 in the table with U; year 2039 in the table without U"
        ),
    )


@pytest.mark.parametrize(
    ("year", "month", "day", "expected"),
    [
        ("1", "1", "1", dt.date(2011, 1, 1)),
        ("7", "C", "T", dt.date(2017, 12, 26)),
        ("A", "A", "A", dt.date(2020, 10, 10)),
        ("H", "B", "H", dt.date(2027, 11, 17)),
        ("J", "9", "J", dt.date(2028, 9, 18)),
        ("P", "5", "P", dt.date(2033, 5, 23)),
        ("T", "2", "S", dt.date(2036, 2, 25)),
    ],
)
def test_date_characters_follow_the_shared_table(
    year: str, month: str, day: str, expected: dt.date
) -> None:
    code = parse_code(with_date(year, month, day))
    assert code.production_dates == (expected,)
    assert code.ambiguous == ()


@pytest.mark.parametrize("product_type", list(ProductType))
def test_expect_accepts_the_matching_product_type(product_type: ProductType) -> None:
    text = PACK[:3] + product_type + PACK[4:]
    assert parse_code(text, expect=product_type).product_type is product_type


# --- errors, each with its position -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("", 1, "empty code"),
        (PACK[:-1], 24, "ends after 23 characters"),
        (PACK + "1", 25, "25 characters is too long"),
        (PACK[:20], 21, "a cascade-use re-code 19"),
        (PACK[:3] + "X" + PACK[4:], 4, "'X' is not allowed in the product type"),
        (PACK[:4] + "H" + PACK[5:], 5, "'H' is not allowed in the battery type"),
        ("0-1" + PACK[3:], 2, "'-' is not allowed in the manufacturer code"),
        (PACK[:9] + "*" + PACK[10:], 10, "'\\*' is not allowed in the traceability code"),
        (with_date("I", "6", "F"), 15, "'I' is not allowed in the production year"),
        (with_date("O", "6", "F"), 15, "'O' is not allowed"),
        (with_date("H", "6", "Q"), 17, "'Q' is not allowed in the production day"),
        (with_date("H", "Z", "1"), 16, "'Z' is not allowed in the production month"),
        (with_date("H", "0", "1"), 16, "month 0 does not exist"),
        (with_date("H", "D", "1"), 16, "'D' is not a month"),
        (with_date("H", "V", "1"), 16, "'V' is not a month"),
        (with_date("C", "2", "X"), 17, "neither 30 February 2022 nor 29 February 2022 exists"),
        (with_date("C", "4", "0"), 17, "31 April 2022 does not exist"),
        (with_date("U", "1", "0"), 17, "come from different readings"),
        (PACK[:17] + "0000000", 18, "serial 0000000"),
        (PACK[:19] + "A" + PACK[20:], 20, "'A' is not allowed in the serial"),
        (CASCADE[:17] + "X" + CASCADE[18:], 18, "'X' is not allowed in the cascade-use marker"),
        (CASCADE[:18] + "Q", 19, "'Q' is not allowed in the cascade-use product type"),
        (CASCADE[:10] + "0000000RP", 11, "serial 0000000"),
    ],
)
def test_each_error_is_reported_at_its_position(text: str, position: int, reason: str) -> None:
    check = check_code(text)
    assert not check.valid
    assert check.code is None
    assert [issue.position for issue in check.errors] == [position]
    assert re.search(reason, check.errors[0].reason)
    with pytest.raises(InvalidCode, match=reason) as info:
        parse_code(text)
    assert info.value.errors == check.errors


def test_every_problem_is_returned_in_position_order() -> None:
    text = "0-1X" + PACK[4:15] + "0" + PACK[16:17] + "0000000"
    check = check_code(text)
    assert [issue.position for issue in check.errors] == [2, 4, 16, 18]
    assert check.manufacturer is None
    assert check.product_type is None
    assert check.battery_type is BatteryType.LFP
    assert check.spec == "1A"
    assert check.production_dates == ()
    assert check.serial is None


@pytest.mark.parametrize(
    ("text", "positions"),
    [
        (PACK.lower(), [4, 5, 7, 15, 17]),
        ("001pB1A0000001h6f0000042", [4, 15, 17]),
        (CASCADE[:18] + "m", [19]),
    ],
)
def test_lowercase_is_an_error_at_every_lowercase_position(text: str, positions: list[int]) -> None:
    check = check_code(text)
    assert [issue.position for issue in check.errors] == positions
    assert all("codes use capital letters" in issue.reason for issue in check.errors)
    with pytest.raises(InvalidCode, match="lowercase"):
        parse_code(text)


@pytest.mark.parametrize("text", [f" {PACK}", f"{PACK}\n", f"{PACK[:10]} {PACK[10:]}"])
def test_whitespace_is_not_trimmed(text: str) -> None:
    check = check_code(text)
    assert not check.valid
    assert any("' '" in issue.reason or "'\\n'" in issue.reason for issue in check.errors)


@pytest.mark.parametrize(
    ("expect", "reason"),
    [
        (ProductType.MODULE, "expected a module \\(M\\), found a pack \\(P\\)"),
        (ProductType.CELL, "expected a cell \\(C\\), found a pack \\(P\\)"),
    ],
)
def test_expect_refuses_another_product_type(expect: ProductType, reason: str) -> None:
    check = check_code(PACK, expect=expect)
    assert [issue.position for issue in check.errors] == [4]
    with pytest.raises(InvalidCode, match=reason):
        parse_code(PACK, expect=expect)


@given(st.text(max_size=30))
def test_check_code_never_raises_and_agrees_with_parse_code(text: str) -> None:
    check = check_code(text)
    if check.valid:
        assert parse_code(text) == check.code
    else:
        assert check.errors
        assert all(1 <= issue.position <= max(len(text), 1) + 1 for issue in check.errors)
        with pytest.raises(InvalidCode):
            parse_code(text)


# --- ambiguous date values 27-31 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "days"),
    [
        ("U", (27,)),  # only in the table with U
        ("V", (27, 28)),
        ("W", (28, 29)),
        ("X", (29, 30)),
        ("Y", (30, 31)),
        ("0", (31,)),  # only in the table without U
    ],
)
def test_ambiguous_days_return_every_reading(day: str, days: tuple[int, ...]) -> None:
    check = check_code(with_date("H", "1", day))
    assert check.valid
    assert check.ambiguous == ("production_date",)
    assert check.production_dates == tuple(dt.date(2027, 1, d) for d in days)
    assert check.production_date == (dt.date(2027, 1, days[0]) if len(days) == 1 else None)
    assert [note.position for note in check.notes] == [17]


def test_a_reading_that_gives_no_real_date_is_noted_not_chosen() -> None:
    check = check_code(with_date("E", "2", "X"))  # 2024 is a leap year
    assert check.valid
    assert check.production_dates == (dt.date(2024, 2, 29),)
    assert check.ambiguous == ("production_date",)
    assert "30 February 2024, which does not exist" in check.notes[-1].reason


@pytest.mark.parametrize(
    ("year", "years"),
    [("U", (2037,)), ("V", (2037, 2038)), ("Y", (2040, 2041)), ("0", (2041,))],
)
def test_ambiguous_years_return_every_reading(year: str, years: tuple[int, ...]) -> None:
    code = parse_code(with_date(year, "3", "1"))
    assert code.ambiguous == ("production_date",)
    assert code.production_dates == tuple(dt.date(y, 3, 1) for y in years)


# --- generation -------------------------------------------------------------------------------

alnum = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=1)


def fixed(length: int) -> st.SearchStrategy[str]:
    return st.text(
        alphabet=string.ascii_uppercase + string.digits, min_size=length, max_size=length
    )


@given(seed=st.integers(), form=st.sampled_from(list(CodeForm)))
def test_generated_codes_are_valid_deterministic_and_unambiguous(seed: int, form: CodeForm) -> None:
    text = generate_code(random.Random(seed), form=form)
    assert text == generate_code(random.Random(seed), form=form)
    code = parse_code(text)
    assert len(text) == (FULL_LENGTH if form is CodeForm.FULL else CASCADE_LENGTH)
    assert code.form is form
    assert code.ambiguous == ()
    assert CATENA_X_PATTERN.match(text)


@given(
    seed=st.integers(),
    form=st.sampled_from(list(CodeForm)),
    manufacturer=fixed(3),
    product_type=st.sampled_from(list(ProductType)),
    battery_type=st.sampled_from(list(BatteryType)),
    spec=fixed(2),
    trace_code=fixed(7),
    date=st.dates(dt.date(2011, 1, 1), dt.date(2041, 12, 31)),
    serial=st.integers(1, 9_999_999),
    reading=st.sampled_from(list(DateReading)),
)
def test_generated_codes_parse_back_to_the_same_fields(
    seed: int,
    form: CodeForm,
    manufacturer: str,
    product_type: ProductType,
    battery_type: BatteryType,
    spec: str,
    trace_code: str,
    date: dt.date,
    serial: int,
    reading: DateReading,
) -> None:
    text = generate_code(
        random.Random(seed),
        form=form,
        manufacturer=manufacturer,
        product_type=product_type,
        battery_type=battery_type,
        spec=spec,
        trace_code=trace_code,
        date=date,
        serial=serial,
        date_reading=reading,
    )
    code = parse_code(text)
    assert (code.manufacturer, code.product_type, code.battery_type) == (
        manufacturer,
        product_type,
        battery_type,
    )
    assert (code.spec, code.serial) == (spec, serial)
    assert code.trace_code == (trace_code if form is CodeForm.FULL else None)
    assert date in code.production_dates
    ambiguous = date.day > 26 or date.year > 2036
    assert code.ambiguous == (("production_date",) if ambiguous else ())
    if not ambiguous:
        assert code.production_date == date


@given(
    date=st.dates(dt.date(2011, 1, 27), dt.date(2036, 12, 31)).filter(lambda d: d.day >= 27),
    reading=st.sampled_from(list(DateReading)),
)
def test_days_27_to_31_are_reported_ambiguous(date: dt.date, reading: DateReading) -> None:
    text = generate_code(random.Random(0), date=date, date_reading=reading)
    check = check_code(text)
    assert check.valid
    assert check.ambiguous == ("production_date",)
    assert date in check.production_dates
    assert check.notes[0].position == 17


@given(
    seed=st.integers(),
    form=st.sampled_from(list(CodeForm)),
    index=st.integers(0, FULL_LENGTH - 1),
    replacement=st.sampled_from(WIDE_ALPHABET),
)
def test_single_character_corruption_is_located_or_still_valid(
    seed: int, form: CodeForm, index: int, replacement: str
) -> None:
    text = generate_code(random.Random(seed), form=form)
    index %= len(text)
    if text[index] == replacement:
        return
    corrupted = text[:index] + replacement + text[index + 1 :]
    check = check_code(corrupted)
    changed = field_of(form, index + 1)
    if check.valid:
        # Still a code: it must parse, and differ from the original in that field only.
        before, after = read_back(parse_code(text)), read_back(parse_code(corrupted))
        differing = {key for key in before if before[key] != after[key]}
        assert differing == {"date" if changed == "production_date" else changed}
        return
    positions = {issue.position for issue in check.errors}
    first, last = FIELD_POSITIONS[form][changed]
    if changed in {"production_date", "serial"}:
        # A date can become impossible at the day; a serial can become all zeros.
        assert positions <= set(range(first, last + 1))
    else:
        assert positions == {index + 1}


def test_generation_is_stable_for_a_seed() -> None:
    assert (
        generate_code(
            random.Random(7),
            manufacturer="001",
            product_type=ProductType.PACK,
            battery_type=BatteryType.LFP,
            spec="1A",
            trace_code="0000001",
            date=dt.date(2024, 3, 9),
            serial=42,
        )
        == "001PB1A0000001E390000042"
    )


@pytest.mark.parametrize(
    ("reading", "day_char"), [(DateReading.WITH_U, "V"), (DateReading.WITHOUT_U, "W")]
)
def test_date_reading_chooses_the_encoding(reading: DateReading, day_char: str) -> None:
    text = generate_code(random.Random(1), date=dt.date(2025, 5, 28), date_reading=reading)
    assert text[16] == day_char


@pytest.mark.parametrize("date", [dt.date(2025, 5, 28), dt.date(2040, 5, 1)])
def test_an_ambiguous_date_needs_a_reading(date: dt.date) -> None:
    with pytest.raises(AmbiguousDate, match="pass date_reading"):
        generate_code(random.Random(1), date=date)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"date": dt.date(2005, 1, 1)}, "position 15: year 2005 cannot be written"),
        ({"date": dt.date(2050, 1, 1)}, "position 15: year 2050 cannot be written"),
        ({"serial": 0}, "position 18: serial 0 is outside"),
        ({"serial": 10_000_000}, "position 18: serial 10000000 is outside"),
        ({"manufacturer": "AB"}, "position 1: the manufacturer code has 3 characters"),
        ({"manufacturer": "ab1"}, "position 1: lowercase 'a'.*position 2: lowercase 'b'"),
        ({"spec": "1"}, "position 6: the specification code has 2 characters"),
        ({"trace_code": "12345678"}, "position 8: the traceability code has 7 characters"),
    ],
)
def test_generation_refuses_fields_it_cannot_write(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidCode, match=match):
        generate_code(random.Random(1), **kwargs)  # type: ignore[arg-type]


# --- cascade-use re-code ----------------------------------------------------------------------


def test_recode_links_the_new_code_to_the_original() -> None:
    link = recode_for_cascade(
        PACK, manufacturer="T9X", spec="2B", date=dt.date(2031, 5, 1), serial=7
    )
    assert link.code.text == "T9XPB2BM510000007RP"
    assert link.code.form is CodeForm.CASCADE
    assert link.code.trace_code is None
    assert link.code.cascade_suffix is ProductType.PACK
    assert link.original == parse_code(PACK)
    assert parse_code(link.code.text) == link.code


def test_recode_may_change_product_and_battery_type() -> None:
    link = recode_for_cascade(
        parse_code(PACK),
        manufacturer="T9X",
        spec="2B",
        date=dt.date(2031, 5, 1),
        serial=7,
        product_type=ProductType.MODULE,
        battery_type=BatteryType.OTHER,
    )
    assert (link.code.product_type, link.code.battery_type) == (
        ProductType.MODULE,
        BatteryType.OTHER,
    )
    assert link.code.cascade_suffix is ProductType.PACK


def test_a_cascade_code_can_be_recoded_again() -> None:
    first = recode_for_cascade(
        PACK, manufacturer="T9X", spec="2B", date=dt.date(2031, 5, 1), serial=7
    )
    second = recode_for_cascade(
        first.code, manufacturer="K00", spec="01", date=dt.date(2035, 1, 2), serial=1
    )
    assert second.original is first.code
    assert second.code.form is CodeForm.CASCADE


@pytest.mark.parametrize(
    ("original", "kwargs", "match"),
    [
        (PACK[:-1], {}, "position 24: code ends after 23"),
        (PACK, {"date": dt.date(2026, 1, 1)}, "position 8: re-code date 2026-01-01 precedes"),
        (PACK, {"serial": 0}, "position 11: serial 0 is outside"),
        (PACK, {"manufacturer": "T9"}, "position 1: the manufacturer code has 3 characters"),
    ],
)
def test_recode_refuses_bad_input(original: str, kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {
        "manufacturer": "T9X",
        "spec": "2B",
        "date": dt.date(2031, 5, 1),
        "serial": 7,
    }
    with pytest.raises(InvalidCode, match=match):
        recode_for_cascade(original, **{**arguments, **kwargs})  # type: ignore[arg-type]


def test_recode_on_an_ambiguous_date_needs_a_reading() -> None:
    with pytest.raises(AmbiguousDate, match="day 29 is written differently"):
        recode_for_cascade(PACK, manufacturer="T9X", spec="2B", date=dt.date(2031, 5, 29), serial=7)
    link = recode_for_cascade(
        PACK,
        manufacturer="T9X",
        spec="2B",
        date=dt.date(2031, 5, 29),
        serial=7,
        date_reading=DateReading.WITH_U,
    )
    assert dt.date(2031, 5, 29) in link.code.production_dates
    assert link.code.ambiguous == ("production_date",)


@pytest.mark.parametrize(
    ("letter", "confirmed"), [("B", True), ("E", True), ("Z", True), ("A", False), ("G", False)]
)
def test_battery_type_readings_say_whether_they_are_confirmed(letter: str, confirmed: bool) -> None:
    assert BatteryType(letter).confirmed is confirmed


# --- the quick readings used on the event path agree with the full report ---

# Near-codes: valid codes with characters swapped for others from the code alphabet and
# beyond (lowercase, the ambiguous date characters, 0), cut or lengthened.
_NEAR_CODE_CHARS = string.digits + string.ascii_uppercase + "pmcuvwxy0 -"


@st.composite
def _near_codes(draw: st.DrawFn) -> str:
    code = generate_code(random.Random(draw(st.integers(0, 2**32))))
    if draw(st.booleans()):
        code = recode_for_cascade(
            generate_code(random.Random(draw(st.integers(0, 2**32))), date=dt.date(2024, 3, 9)),
            manufacturer="T9X",
            spec="2B",
            date=dt.date(2026, 1, 5),
            serial=draw(st.integers(1, 9_999_999)),
        ).code.text
    chars = list(code)
    for _ in range(draw(st.integers(0, 3))):
        chars[draw(st.integers(0, len(chars) - 1))] = draw(st.sampled_from(_NEAR_CODE_CHARS))
    text = "".join(chars)
    return draw(st.sampled_from([text, text[:-1], text + "1", text[:19], text[:3] + text[4:]]))


@given(text=st.one_of(_near_codes(), st.text(max_size=26)))
def test_code_is_valid_agrees_with_the_report(text: str) -> None:
    assert code_is_valid(text) is check_code(text).valid


@given(text=st.one_of(_near_codes(), st.text(max_size=26)))
def test_product_type_of_agrees_with_the_report(text: str) -> None:
    assert product_type_of(text) is check_code(text).product_type
