"""Who this process is, for rows that must outlive it: a call written before dialing, an outbox row
claimed by a deliverer. `host-pid` names the owner; a later process on the same host can tell that
the owner is gone (its pid no longer runs) and take over at once instead of waiting for a timeout."""

from __future__ import annotations

import os
import socket


def node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def gone(owner: str) -> bool | None:
    """For an owner named `host-pid[-suffix]`: True when it is a process of this host that no longer
    runs, False when it still runs (or is us), None when this host cannot tell (another host)."""
    host = socket.gethostname()
    if not owner.startswith(host + "-"):
        return None
    pid = owner[len(host) + 1:].split("-", 1)[0]
    if not pid.isdigit():
        return None
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it runs, as another user
        return False
    return False
