"""Panel time zones: "+0330"-style fixed offsets (what panels send) or IANA names."""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    """The IANA names this machine knows (system zoneinfo or the tzdata package); checked before
    `ZoneInfo` so no name can become a file path (a directory, a 5,000-character name)."""
    return frozenset(available_timezones()) | {"UTC"}


def parse_offset(value: str) -> tzinfo:
    """ "+0330" / "-05:00" -> fixed offset; "Asia/Tehran" -> ZoneInfo. ValueError names the problem."""
    text = value.strip()
    m = _OFFSET.match(text)
    if m:
        sign, hours, minutes = m.groups()
        if int(hours) > 14 or int(minutes) >= 60:
            raise ValueError(f"timezone offset out of range: {value!r}")
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-delta if sign == "-" else delta)
    if len(text) <= 64 and text in _zone_names():
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    shown = value if len(value) <= 40 else value[:37] + "..."
    raise ValueError(f"timezone must be an offset like +0330 or an IANA name, got {shown!r}")
