"""Panel time zones: "+0330"-style fixed offsets (what panels send) or IANA names."""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


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
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone must be an offset like +0330 or an IANA name, got {value!r}") from None
