"""Who is in a chat, as conversation's `Chat` message tells it: the rule every service
applies before an agent may read or act on a chat (conversation applies it to its own)."""

from __future__ import annotations

from kaiwa.conversation.v1 import conversation_pb2 as cpb


def agents_in(chat: cpb.Chat) -> set[str]:
    """The chat's agent and the invited agents who have not left."""
    return ({chat.agent_id} | {p.agent_id for p in chat.participants if p.role != "former"}) - {""}
