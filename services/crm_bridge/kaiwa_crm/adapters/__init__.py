"""CRM-10: one interface for every CRM a tenant can use; the tenant's connection picks
the implementation (the built-in CRM unless a Zoho CRM account is connected).

Every write takes a natural key (a chat, a page view, a request id): doing it again
finds what the first call made instead of making a second one, in both adapters.
"""

from __future__ import annotations

from typing import Protocol

from ..domain import AttachmentInfo, NewAttachment, Record, RecordChanges
from ..domain.activity import (
    Activity,
    ChatActivity,
    Conversion,
    NewDeal,
    NewNote,
    NewRecord,
    NewTask,
    Note,
    Task,
    Visit,
    VisitPage,
)
from ..domain.model import Deal


class CrmAdapter(Protocol):
    kind: str

    async def find(self, email: str) -> Record | None:
        """The lead or contact with this e-mail (any letter case)."""

    async def get(self, record_id: str) -> Record | None: ...

    async def upsert(self, changes: RecordChanges) -> tuple[Record, bool]:
        """Create or update the record of changes.email; returns (record, created)."""

    async def create(self, new: NewRecord) -> tuple[Record, bool]:
        """Add a record unless the e-mail has one: (the record, whether it was added)."""

    async def update_fields(self, record: Record, fields: dict[str, str]) -> Record:
        """Set fields ("" clears one); others are kept."""

    async def add_note(self, record: Record, note: NewNote) -> Note: ...

    async def list_notes(self, record: Record) -> list[Note]: ...

    async def add_task(self, record: Record, task: NewTask) -> Task: ...

    async def attach(self, record: Record, attachment: NewAttachment) -> AttachmentInfo:
        """A chat's transcript is attached once per record (a later one replaces it)."""

    async def add_chat_activity(self, record: Record, activity: ChatActivity) -> None:
        """The chat in the record's feed and in each of its open deals' feeds."""

    async def record_visit(self, record: Record, page: VisitPage) -> None: ...

    async def convert_lead(self, record: Record, conversion: Conversion) -> tuple[Record, Deal | None]: ...

    async def add_deal(self, record: Record, deal: NewDeal) -> Deal: ...

    async def list_activities(self, record: Record, deal_id: str, chats_only: bool) -> list[Activity]: ...

    async def list_visits(self, record: Record) -> list[Visit]: ...
