"""Organisations that act on batteries and lots: their roles and regions.

Regions are province-level administrative division codes of GB/T 2260 (six
digits ending in ``0000``). An actor's keys live on the log's key registry
(``ledger.key.add`` with ``owner`` = the actor id), so rotation and revocation
keep history verifiable.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["PROVINCES", "Actor", "ActorId", "Region", "Role", "check_actor_id", "check_region"]

# GB/T 2260 province-level divisions (mainland 31, plus Hong Kong, Macao, Taiwan).
PROVINCES: dict[str, str] = {
    "110000": "北京", "120000": "天津", "130000": "河北", "140000": "山西", "150000": "内蒙古",
    "210000": "辽宁", "220000": "吉林", "230000": "黑龙江", "310000": "上海", "320000": "江苏",
    "330000": "浙江", "340000": "安徽", "350000": "福建", "360000": "江西", "370000": "山东",
    "410000": "河南", "420000": "湖北", "430000": "湖南", "440000": "广东", "450000": "广西",
    "460000": "海南", "500000": "重庆", "510000": "四川", "520000": "贵州", "530000": "云南",
    "540000": "西藏", "610000": "陕西", "620000": "甘肃", "630000": "青海", "640000": "宁夏",
    "650000": "新疆", "710000": "台湾", "810000": "香港", "820000": "澳门",
}  # fmt: skip

_ACTOR_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")


class Role(StrEnum):
    """What an organisation does in a battery's life."""

    BATTERY_MAKER = "battery_maker"
    AUTOMAKER = "automaker"
    DEALER = "dealer"  # dealer or service shop: installs, repairs, replaces
    COLLECTOR = "collector"  # collection service point (回收服务网点)
    CASCADE_OPERATOR = "cascade_operator"  # 梯次利用企业
    RECYCLER = "recycler"  # 再生利用企业
    SCRAP_PROCESSOR = "scrap_processor"
    AUDITOR = "auditor"


def check_actor_id(value: str) -> str:
    if not _ACTOR_ID.fullmatch(value):
        raise ValueError(
            f"actor id {value!r} must be 2-64 of a-z, 0-9 and '-', starting alphanumeric"
        )
    return value


def check_region(value: str) -> str:
    if value not in PROVINCES:
        raise ValueError(f"region {value!r} is not a GB/T 2260 province code such as 440000")
    return value


ActorId = Annotated[str, AfterValidator(check_actor_id)]
Region = Annotated[str, AfterValidator(check_region)]


class Actor(BaseModel):
    """A registered organisation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: ActorId
    name: str = Field(min_length=1, max_length=200)
    role: Role
    region: Region
