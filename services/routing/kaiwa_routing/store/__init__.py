"""asyncpg queries of the routing schema, one module per thing they touch:

    departments   departments, and who belongs to them
    agents        agents, availability, capacity, the candidates of a pass
    chats         a chat's row: learned, queued, ended, missed; its lock
    queue         queue order and positions, wait statistics, missed chats
    offers        offers and refusals; accepting one (migrations/002)
    assignments   the assignment statement and its history
    transfers     transfers and department members' declines
    members       agents invited into a chat
    rules         assignment and priority rules
    team          team messages
    logins        agents' XMPP logins (CMD-02)
    background    the only statements across tenants: finding background work

Tenancy: every function takes the tenant and every statement filters by it (joins too:
`x.tenant = y.tenant AND x.id = y.x_id`), matching keys that all start with the tenant
(migrations/003). The exceptions are the two statements of `background`, named as such.

Lock order, kept everywhere so concurrent transactions never deadlock: a chat row, then
agent rows; a routing pass takes its queue's advisory lock first and only ever locks chats
with SKIP LOCKED, so it never waits on a chat. Agent rows: `SetAvailability` alone takes
FOR UPDATE (it waits for passes offering to that agent, see `offers.offer_chat`); capacity
changes take FOR NO KEY UPDATE, which passes' FOR KEY SHARE never waits for.
"""

from . import agents, assignments, background, chats, departments, logins, members, offers, queue, rules, team, transfers

__all__ = [
    "agents",
    "assignments",
    "background",
    "chats",
    "departments",
    "logins",
    "members",
    "offers",
    "queue",
    "rules",
    "team",
    "transfers",
]
