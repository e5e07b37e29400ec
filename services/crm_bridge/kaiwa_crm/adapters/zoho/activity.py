"""Notes, tasks, transcripts, chats in the feed, deals and lead conversion in Zoho CRM
(the ZohoCrm adapter's second half; records are in adapter.py).

Every create first looks for the `[kaiwa:<key>]` marker of what it would make (a retry
after a lost answer finds the first), so nothing is created twice."""

from __future__ import annotations

from kaiwa_common.errors import FailedPrecondition, NotFound

from ...domain import AttachmentInfo, NewAttachment, Record
from ...domain.activity import Activity, ChatActivity, Conversion, NewDeal, NewNote, NewTask, Note, Task, Visit, VisitPage
from ...domain.model import CONTACT, LEAD, Deal
from .client import ZohoClient, records_of, written
from .mapping import marker, record_id, split_id, to_deal
from .visits import list_visits, record_visit


class ZohoActivities:
    client: ZohoClient

    # --- notes, tasks, attachments, activities ------------------------------------------

    async def add_note(self, record: Record, note: NewNote) -> Note:
        module, zoho_id = self._where(record)
        found = await self._related_with_marker(module, zoho_id, "Notes", "Note_Content", note.key)
        if found is None:
            body = {"Note_Title": note.title, "Note_Content": f"{note.text}\n{marker(note.key)}"}
            [details] = written(await self.client.call("POST", f"/{module}/{zoho_id}/Notes", json={"data": [body]}))
            found = {"id": details["id"], "Note_Title": note.title, "Note_Content": body["Note_Content"]}
        return _note(record.id, found, note)

    async def list_notes(self, record: Record) -> list[Note]:
        module, zoho_id = self._where(record)
        answer = await self.client.call(
            "GET", f"/{module}/{zoho_id}/Notes", params={"fields": "Note_Title,Note_Content,Created_Time"}
        )
        return [_note(record.id, data, None) for data in records_of(answer)]

    async def add_task(self, record: Record, task: NewTask) -> Task:
        module, zoho_id = self._where(record)
        found = await self._related_with_marker(module, zoho_id, "Tasks", "Description", task.key)
        if found is None:
            body = {
                "Subject": task.subject,
                "Due_Date": task.due_date.isoformat(),
                "Status": "Not Started",
                "Description": marker(task.key),
                **self._link(record, zoho_id),
            }
            if task.owner:
                body["Owner"] = {"id": await self._user_id(task.owner)}
            [details] = written(await self.client.call("POST", "/Tasks", json={"data": [body]}))
            found = {"id": details["id"]}
        return Task(str(found["id"]), record.id, task.subject, task.due_date, task.owner, "open")

    async def attach(self, record: Record, attachment: NewAttachment) -> AttachmentInfo:
        module, zoho_id = self._where(record)
        listed = records_of(
            await self.client.call("GET", f"/{module}/{zoho_id}/Attachments", params={"fields": "File_Name,Size"})
        )
        same = next((a for a in listed if a.get("File_Name") == attachment.name), None)
        if same is None:
            files = {"file": (attachment.name, attachment.content, attachment.mime_type.split(";")[0])}
            [details] = written(await self.client.call("POST", f"/{module}/{zoho_id}/Attachments", files=files))
            same = {"id": details["id"]}
        return AttachmentInfo(
            str(same["id"]), attachment.name, attachment.mime_type, len(attachment.content), attachment.chat_id, None
        )

    async def add_chat_activity(self, record: Record, a: ChatActivity) -> None:
        module, zoho_id = self._where(record)
        await self._call_once(module, zoho_id, self._link(record, zoho_id), a)
        for deal in record.open_deals:
            await self._call_once("Deals", deal.id, {"What_Id": {"id": deal.id}, "$se_module": "Deals"}, a)

    async def record_visit(self, record: Record, page: VisitPage) -> None:
        await record_visit(self.client, record, page)

    async def list_visits(self, record: Record) -> list[Visit]:
        return await list_visits(self.client, record)

    async def list_activities(self, record: Record, deal_id: str, chats_only: bool) -> list[Activity]:
        module, zoho_id = ("Deals", deal_id) if deal_id else self._where(record)
        if deal_id and not any(d.id == deal_id for d in record.deals):
            raise NotFound(f"deal {deal_id} is not a deal of record {record.id}")
        fields = {"fields": "Subject,Description,Call_Start_Time,Call_Duration,Owner"}
        chats = [
            _chat_activity(c) for c in records_of(await self.client.call("GET", f"/{module}/{zoho_id}/Calls", params=fields))
        ]
        if chats_only or deal_id:
            return chats
        tasks = records_of(
            await self.client.call("GET", f"/{module}/{zoho_id}/Tasks", params={"fields": "Subject,Due_Date,Status"})
        )
        return chats + [Activity(str(t["id"]), "task", "", str(t.get("Subject", "")), "", "", "", None, None) for t in tasks]

    # --- deals and conversion ---------------------------------------------------------

    async def convert_lead(self, record: Record, conversion: Conversion) -> tuple[Record, Deal | None]:
        if record.type != LEAD:
            raise FailedPrecondition(f"record {record.id} is a contact already: add a deal to it instead")
        current = await self.get(record.id)
        if current is None:  # converted by an earlier try whose answer was lost
            contact = await self.find(record.email)
            if contact is None or contact.type != CONTACT:
                raise NotFound(f"lead {record.id} not found")
            deal = next((d for d in contact.deals if conversion.deal and d.name == conversion.deal.name), None)
            return contact, deal
        body: dict = {"overwrite": True, "notify_lead_owner": False, "notify_new_entity_owner": False}
        if conversion.deal is not None:
            d = conversion.deal
            body["Deals"] = {"Deal_Name": d.name, "Stage": d.stage or "Qualification", "Amount": d.amount}
            if d.closing_date:
                body["Deals"]["Closing_Date"] = d.closing_date.isoformat()
        answer = await self.client.call("POST", f"/Leads/{split_id(record.id)[1]}/actions/convert", json={"data": [body]})
        [details] = written(answer)
        contact = await self._must(record_id(CONTACT, str(details["Contacts"]["id"])))
        deal_id = str((details.get("Deals") or {}).get("id", ""))
        return contact, next((d for d in contact.deals if d.id == deal_id), None)

    async def add_deal(self, record: Record, deal: NewDeal) -> Deal:
        if record.type != CONTACT:
            raise FailedPrecondition(f"record {record.id} is a lead: convert it to a contact to add a deal")
        _, zoho_id = self._where(record)
        if deal.key:
            listed = records_of(await self.client.call("GET", f"/Contacts/{zoho_id}/Deals", params={"fields": _DEAL_FIELDS}))
            same = next((d for d in listed if marker(deal.key) in str(d.get("Description") or "")), None)
            if same is not None:
                return to_deal(same)
        body = {
            "Deal_Name": deal.name,
            "Stage": deal.stage or "Qualification",
            "Amount": deal.amount,
            "Contact_Name": {"id": zoho_id},
        }
        if deal.closing_date:
            body["Closing_Date"] = deal.closing_date.isoformat()
        if deal.key:
            body["Description"] = marker(deal.key)
        [details] = written(await self.client.call("POST", "/Deals", json={"data": [body]}))
        return Deal(str(details["id"]), deal.name, body["Stage"], deal.amount, deal.closing_date, True)

    async def _call_once(self, module: str, zoho_id: str, link: dict, a: ChatActivity) -> None:
        key = f"chat:{a.chat_id}:{module}:{zoho_id}"
        if await self._related_with_marker(module, zoho_id, "Calls", "Description", key) is not None:
            return
        minutes, seconds = divmod(int((a.ended_at - a.started_at).total_seconds()) if a.started_at and a.ended_at else 0, 60)
        body = {
            "Subject": f"チャット: {a.subject}"[:255],
            "Call_Type": "Inbound",
            "Call_Start_Time": (a.started_at or a.ended_at).isoformat(timespec="seconds")
            if (a.started_at or a.ended_at)
            else None,
            "Call_Duration": f"{minutes:02d}:{seconds:02d}",
            "Description": f"担当: {a.agent}\n訪問者: {a.visitor}\n終了: {a.ended_at.isoformat() if a.ended_at else ''}\n"
            f"ログ: {a.link}\n{marker(key)}",
            **link,
        }
        written(await self.client.call("POST", "/Calls", json={"data": [body]}))

    async def _related_with_marker(self, module: str, zoho_id: str, related: str, field: str, key: str) -> dict | None:
        answer = await self.client.call("GET", f"/{module}/{zoho_id}/{related}", params={"fields": f"{field},Note_Title,Subject"})
        return next((d for d in records_of(answer) if marker(key) in str(d.get(field) or "")), None)


_DEAL_FIELDS = "Deal_Name,Stage,Amount,Closing_Date,Description"


def _note(rid: str, data: dict, new: NewNote | None) -> Note:
    text = str(data.get("Note_Content") or "").split("\n[kaiwa:")[0]
    return Note(
        id=str(data["id"]),
        record_id=rid,
        kind=new.kind if new else "",
        title=str(data.get("Note_Title") or ""),
        text=text,
        author=new.author if new else "",
        notify=new.notify if new else "",
        created_at=None,
    )


def _chat_activity(data: dict) -> Activity:
    return Activity(
        id=str(data["id"]),
        kind="chat",
        chat_id="",
        subject=str(data.get("Subject") or ""),
        agent="",
        visitor="",
        link="",
        started_at=None,
        ended_at=None,
    )
