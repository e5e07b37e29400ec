"""Estimated wait of a queued chat.

The estimate uses what routing saw recently in the chat's department:

- H, the mean handling time (assigned -> released) of the last 50 chats the department's
  agents finished (the whole tenant's when the department has none yet; 300 s when
  nothing has been handled at all);
- A, the mean time from queued to assigned of those same chats (how long an offer takes
  to be accepted when an agent is free);
- S, the online capacity: the sum of max_chats of the department's online agents;
- F, the free slots: capacity not used by open chats right now.

A chat at position p <= F needs only to be accepted: wait = A. Otherwise the p - F chats
ahead of it that find no free slot wait for slots to free; S slots free at a rate of about
S / H per second, so wait = A + (p - F) * H / S. With nobody online (S = 0) there is no
basis for an estimate until someone comes online; we then report H * p, the wait as if
one agent came back now.
"""

from __future__ import annotations

import math

DEFAULT_HANDLING_SECONDS = 300.0


def estimated_wait(
    position: int, mean_handling: float | None, mean_accept: float | None, online_capacity: int, free_slots: int
) -> int:
    if position <= 0:
        return 0
    handling = mean_handling if mean_handling and mean_handling > 0 else DEFAULT_HANDLING_SECONDS
    accept = mean_accept if mean_accept and mean_accept > 0 else 0.0
    if online_capacity <= 0:
        return math.ceil(handling * position)
    if position <= free_slots:
        return math.ceil(accept)
    return math.ceil(accept + (position - max(free_slots, 0)) * handling / online_capacity)
