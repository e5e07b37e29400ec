"""The chats this replica last wrote on SendMessage's one-statement path, each with the
version of its row (an md5 of the row as PostgreSQL prints it), so that a message to a
chat seen before is checked against this snapshot and written in one round trip.

Never trusted blindly: the write goes through only if the row still has exactly that
version (any change by any replica or code path changes it), and a check that refuses
the call on a snapshot is repeated on a fresh read before the caller hears it.
"""

from __future__ import annotations

from collections import OrderedDict


class ChatSnapshots:
    def __init__(self, capacity: int = 5000):
        self.capacity = capacity
        self._entries: OrderedDict[tuple, tuple[dict, str]] = OrderedDict()

    def get(self, tenant: str, chat_id) -> tuple[dict, str] | None:
        """(a copy of the chat, its version), or None if not seen lately."""
        key = (tenant, str(chat_id))
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return dict(entry[0]), entry[1]

    def put(self, chat: dict, version: str) -> None:
        key = (chat["tenant"], str(chat["id"]))
        self._entries[key] = (dict(chat), version)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def drop(self, tenant: str, chat_id) -> None:
        self._entries.pop((tenant, str(chat_id)), None)
