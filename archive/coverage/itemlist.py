"""The recording-item list (音像记录事项清单) as data.

For each enforcement activity the list says how it is recorded: ``text`` (a text record suffices),
``av`` (audio-video is required, but where the list allows it the officer may claim the plans'
exception "对文字记录能够全面有效记录执法行为的,可以不进行音像记录" with a stated reason), or
``whole-process`` (the whole activity is recorded, no exception: acts touching liberty, life, health or
major property, enforcement premises, and for police the questioning of a suspect in full).

Agencies change the list; it is versioned like the retention policy: each version kept with who set it
and why, the default shipped as ``default_item_list.json``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archive.coverage.errors import InvalidActivity
from archive.i18n import N_, _

DEFAULT_ITEM_LIST_FILE = Path(__file__).with_name("default_item_list.json")


class Mode(StrEnum):
    TEXT = "text"  # 文字记录即可
    AV = "av"  # 应当音像记录
    WHOLE_PROCESS = "whole-process"  # 全过程音像记录


MODE_LABELS_ZH: dict[str, str] = {
    Mode.TEXT: "文字记录",
    Mode.AV: "音像记录",
    Mode.WHOLE_PROCESS: "全过程音像记录",
}
MODE_LABELS_EN: dict[str, str] = {
    Mode.TEXT: N_("text suffices"),
    Mode.AV: N_("audio-video required"),
    Mode.WHOLE_PROCESS: N_("whole process recorded"),
}


class Activity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    zh: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)
    mode: Mode
    # The officer may record in text alone by stating why (only for ``av`` activities).
    text_exception: bool = False
    # Longest uncovered stretch tolerated inside the window; None: the list's gap_tolerance_s.
    gap_tolerance_s: float | None = Field(default=None, ge=0, le=86400)
    source: str = Field(default="", max_length=1000)


class ItemList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    title: str = Field(default="", max_length=500)
    gap_tolerance_s: float = Field(default=30.0, ge=0, le=86400)
    activities: list[Activity] = Field(min_length=1, max_length=500)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def find(self, key: str) -> Activity | None:
        for a in self.activities:
            if a.key == key:
                return a
        return None

    def get(self, key: str) -> Activity:
        found = self.find(key)
        if found is not None:
            return found
        raise InvalidActivity(
            _("unknown activity {key!r}: not on the recording-item list (version {version})").format(
                key=key[:70], version=self.version
            )
        )

    def tolerance_s(self, activity: Activity) -> float:
        return self.gap_tolerance_s if activity.gap_tolerance_s is None else activity.gap_tolerance_s


def parse_item_list(data: Any) -> ItemList:
    try:
        items = ItemList.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidActivity(
            _("recording-item list is not valid: {problems}").format(problems=problems)
        ) from exc
    keys = [a.key for a in items.activities]
    if len(keys) != len(set(keys)):
        raise InvalidActivity(_("recording-item list names an activity twice"))
    for a in items.activities:
        if a.text_exception and a.mode is not Mode.AV:
            raise InvalidActivity(
                _("activity {key}: the text-only exception goes with mode 'av' only").format(key=a.key)
            )
    return items


def default_item_list() -> ItemList:
    return parse_item_list(json.loads(DEFAULT_ITEM_LIST_FILE.read_text(encoding="utf-8")))
