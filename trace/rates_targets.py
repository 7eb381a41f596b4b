"""Targets for suyuan's rates, as data in one place, and how a rate is judged against them.

Sources (docs/metrics.md, domain.md §2.4, §3.4-§3.6, §6.1):

* EU Regulation 2023/1542: Art. 8 recycled content (from 18 Aug 2031 and 18 Aug 2036),
  Annex XII Part B recycling efficiency (by 31 Dec 2025 and 2030) and Part C material
  recovery (by 31 Dec 2027 and 2031), Art. 59/60 collection of portable and LMT batteries;
* China: the 2024 edition of 新能源汽车废旧动力电池综合利用行业规范条件 (final 2024-12-24) for
  recovery, its August 2024 draft for Cu/Al recovery and the 60 % cascade-use share;
* China's 14th Five-Year industrial green development plan (专栏4) for 2025 scrap totals.

A target binds a period either **by** a deadline (achievement targets: periods ending on or
after the date) or **from** a date (obligations that start then: periods starting on or
after it). Rates are compared at the precision targets are stated in, 0.1 percentage point
(89.96 % reads 90.0 % and meets "≥ 90 %").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from trace.evidence import Period, Target

__all__ = ["TARGETS", "Binds", "TargetSpec", "judge", "targets_for"]

Binds = Literal["by", "from"]
_PERMILLE: Final = 1000  # shares compared in tenths of a percent
_EU = "EU 2023/1542"
_CN_NORM = "规范条件 2024年本 (China 2024 norm)"
_CN_DRAFT = "规范条件 2024 draft (China, not final)"
_FYP = "14th FYP industrial green development plan, 专栏4 (national 2025)"
_EU_RC_1 = date(2031, 8, 18)
_EU_RC_2 = date(2036, 8, 18)
_EU_RM_1 = date(2027, 12, 31)
_EU_RM_2 = date(2031, 12, 31)
_EU_RE_1 = date(2025, 12, 31)
_EU_RE_2 = date(2030, 12, 31)
_CN_NORM_DATE = date(2024, 12, 24)
_CN_DRAFT_DATE = date(2024, 8, 1)
_FYP_END = date(2025, 12, 31)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target: which rate (and element) it is for, its threshold, date and source.

    ``category`` is the battery category it is set for (``ev``, ``lithium``, ``lead-acid``,
    ``portable``, ``lmt``, ``national``); it does not apply to a rate of another category.
    """

    rate: str
    element: str | None
    threshold: float
    effective: date
    binds: Binds
    source: str
    category: str


def _rm(element: str, first: float, second: float) -> tuple[TargetSpec, ...]:
    art = f"{_EU} Annex XII Part C"
    return (
        TargetSpec("material_recovery", element, first, _EU_RM_1, "by", art, "any"),
        TargetSpec("material_recovery", element, second, _EU_RM_2, "by", art, "any"),
    )


def _cn(element: str, share: float, source: str = _CN_NORM) -> TargetSpec:
    when = _CN_NORM_DATE if source == _CN_NORM else _CN_DRAFT_DATE
    return TargetSpec("material_recovery", element, share, when, "from", source, "any")


def _rc(element: str, first: float, second: float) -> tuple[TargetSpec, ...]:
    art = f"{_EU} Art. 8(2)-(3)"
    return (
        TargetSpec("recycled_content", element, first, _EU_RC_1, "from", art, "ev"),
        TargetSpec("recycled_content", element, second, _EU_RC_2, "from", art, "ev"),
    )


_COLLECTION_EU = f"{_EU} Art. 59-60"
TARGETS: Final[tuple[TargetSpec, ...]] = (
    # Collection: EU targets exist for portable and LMT batteries only (domain.md §3.6);
    # EV batteries must all be taken back, and China sets no numeric target (§2.1).
    TargetSpec(
        "collection_rate_eu", None, 0.63, date(2027, 12, 31), "by", _COLLECTION_EU, "portable"
    ),
    TargetSpec(
        "collection_rate_eu", None, 0.73, date(2030, 12, 31), "by", _COLLECTION_EU, "portable"
    ),
    TargetSpec("collection_rate_eu", None, 0.51, date(2028, 12, 31), "by", _COLLECTION_EU, "lmt"),
    TargetSpec("collection_rate_eu", None, 0.61, date(2031, 12, 31), "by", _COLLECTION_EU, "lmt"),
    # Cascade use: per enterprise-year, by mass (domain.md §2.4, draft).
    TargetSpec("cascade_use_rate_operator", None, 0.60, _CN_DRAFT_DATE, "from", _CN_DRAFT, "ev"),
    # Recycling efficiency (domain.md §3.5).
    TargetSpec(
        "recycling_efficiency", None, 0.65, _EU_RE_1, "by", f"{_EU} Annex XII Part B", "lithium"
    ),
    TargetSpec(
        "recycling_efficiency", None, 0.70, _EU_RE_2, "by", f"{_EU} Annex XII Part B", "lithium"
    ),
    TargetSpec(
        "recycling_efficiency", None, 0.75, _EU_RE_1, "by", f"{_EU} Annex XII Part B", "lead-acid"
    ),
    TargetSpec(
        "recycling_efficiency", None, 0.80, _EU_RE_2, "by", f"{_EU} Annex XII Part B", "lead-acid"
    ),
    # Material recovery (domain.md §2.4, §3.5).
    _cn("Li", 0.90),
    _cn("Ni", 0.98),
    _cn("Co", 0.98),
    _cn("Mn", 0.98),
    _cn("Cu", 0.98, _CN_DRAFT),
    _cn("Al", 0.98, _CN_DRAFT),
    *_rm("Li", 0.50, 0.80),
    *_rm("Ni", 0.90, 0.95),
    *_rm("Co", 0.90, 0.95),
    *_rm("Cu", 0.90, 0.95),
    *_rm("Pb", 0.90, 0.95),
    # Recycled content of new EV packs (domain.md §3.4).
    *_rc("Co", 0.16, 0.26),
    *_rc("Li", 0.06, 0.12),
    *_rc("Ni", 0.06, 0.15),
    *_rc("Pb", 0.85, 0.85),
    # National scrap totals for 2025, in tonnes (domain.md §6.1).
    TargetSpec("scrap_steel", None, 320e6, _FYP_END, "by", _FYP, "national"),
    TargetSpec("scrap_nonferrous", None, 20e6, _FYP_END, "by", _FYP, "national"),
    TargetSpec("recycled_copper", None, 4e6, _FYP_END, "by", _FYP, "national"),
    TargetSpec("recycled_aluminium", None, 11.5e6, _FYP_END, "by", _FYP, "national"),
    TargetSpec("recycled_lead", None, 2.9e6, _FYP_END, "by", _FYP, "national"),
)
"""Every target suyuan compares with; docs/metrics.md prints the same table."""

# Rates whose producer-recovery twin is judged like the recycler's rate.
_ALIASES: Final = {"material_recovery_of_packs": "material_recovery"}


def _binding(spec: TargetSpec, period: Period) -> bool:
    if spec.binds == "by":
        return period.end >= spec.effective
    return period.start >= spec.effective


def _tenths(share: float) -> int:
    return math.floor(share * _PERMILLE + 0.5)


def judge(spec: TargetSpec, value: float | None, period: Period, *, category: str) -> Target:
    """Compare ``value`` with one target for ``period`` and a rate of battery ``category``.

    Examples
    --------
    >>> spec = TargetSpec("material_recovery", "Li", 0.9, date(2024, 12, 24), "from", "CN", "any")
    >>> judge(spec, 0.8996, Period.year(2025), category="lithium").status
    'pass'
    >>> judge(spec, 0.85, Period.year(2025), category="lithium").passed
    False
    >>> judge(spec, 0.95, Period.year(2023), category="lithium").note
    'binds from 2024-12-24'
    """
    threshold, when, source = spec.threshold, spec.effective, spec.source
    if spec.category not in ("any", category) and spec.category != "national":
        note = f"set for {spec.category} batteries, not {category}"
        return Target(source, threshold, when, None, "not_applicable", note)
    if spec.category == "national":
        note = "a national plan figure; the traced flows are a part of the nation's"
        return Target(source, threshold, when, None, "not_applicable", note)
    if not _binding(spec, period):
        note = f"binds {spec.binds} {when.isoformat()}"
        return Target(source, threshold, when, None, "not_applicable", note)
    if value is None:
        return Target(source, threshold, when, None, "not_applicable", "the rate is undefined")
    passed = _tenths(value) >= _tenths(threshold)
    return Target(source, threshold, when, passed, "pass" if passed else "fail")


def targets_for(
    rate: str,
    value: float | None,
    period: Period,
    *,
    element: str | None = None,
    category: str = "ev",
) -> tuple[Target, ...]:
    """Every target listed for ``rate`` (and ``element``), judged for ``period``.

    Examples
    --------
    >>> [t.threshold for t in targets_for("recycled_content", 0.1, Period.year(2032),
    ...                                   element="Co")]
    [0.16, 0.26]
    >>> targets_for("recycled_content", 0.1, Period.year(2032), element="Co")[0].status
    'fail'
    """
    name = _ALIASES.get(rate, rate)
    return tuple(
        judge(spec, value, period, category=category)
        for spec in TARGETS
        if spec.rate == name and spec.element == element
    )
