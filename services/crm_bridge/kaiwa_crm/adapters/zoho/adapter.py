"""The CrmAdapter of a Zoho CRM account (REST API v8).

Leads and contacts are found with `GET /{module}/search?email=`, created with `POST
/{module}` (after a search, so a second create finds the first), updated with `PUT
/{module}/{id}`. Notes (`/{module}/{id}/Notes`), tasks (`/Tasks`), chats as inbound
calls in the activity feed (`/Calls`, also on each open deal), transcripts
(`/{module}/{id}/Attachments`, multipart), deals (`/Deals`), conversion
(`/Leads/{id}/actions/convert`) and visits (the `Visits` module, upsert by Visit_Id).
What Kaiwa creates carries a marker of its natural key; after a call whose outcome is
unknown (a timeout), the retry looks for the marker before creating again.
"""

from __future__ import annotations

from dataclasses import replace

from kaiwa_common.errors import FailedPrecondition, NotFound

from ...domain import AttachmentInfo, NewAttachment, Record, RecordChanges
from ...domain.activity import (
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
from ...domain.errors import CrmRefused
from ...domain.model import CONTACT, LEAD, Deal
from .client import ZohoClient, records_of, written
from .mapping import (
    LABEL_TAGS,
    MODULES,
    account_fields,
    fields_out,
    marker,
    record_id,
    split_id,
    to_deal,
    to_record,
)
from .visits import list_visits, record_visit


class ZohoCrm:
    kind = "zoho"

    def __init__(self, client: ZohoClient, custom: set[str] | None = None):
        self.client = client
        self.custom = custom or set()
        self._users: dict[str, str] | None = None  # Zoho user id -> e-mail

    # --- records -----------------------------------------------------------------------

    async def find(self, email: str) -> Record | None:
        for record_type in (CONTACT, LEAD):
            answer = await self.client.call("GET", f"/{MODULES[record_type]}/search", params={"email": email})
            for data in records_of(answer):
                if str(data.get("Email", "")).lower() == email.lower():
                    return await self._complete(record_type, data)
        return None

    async def get(self, rid: str) -> Record | None:
        where = split_id(rid)
        if where is None:
            return None
        module, zoho_id = where
        try:
            answer = await self.client.call("GET", f"/{module}/{zoho_id}")
        except CrmRefused as exc:
            if exc.code in ("INVALID_DATA", "RECORD_NOT_FOUND", "INVALID_URL_PATTERN"):
                return None
            raise
        data = records_of(answer)
        return await self._complete(LEAD if module == "Leads" else CONTACT, data[0]) if data else None

    async def upsert(self, changes: RecordChanges) -> tuple[Record, bool]:
        existing = await self.find(changes.email)
        record_type = changes.type or (existing.type if existing else LEAD)
        if existing and existing.type == CONTACT and record_type == LEAD:
            raise FailedPrecondition("a contact cannot be turned back into a lead")
        if existing and existing.type != record_type:
            existing, _ = await self.convert_lead(existing, Conversion(account=existing.fields.get("company", ""), deal=None))
        body = {"Email": changes.email, **fields_out(record_type, changes.fields)}
        if changes.name:
            body["Last_Name"] = changes.name
        if changes.source:
            body["Lead_Source"] = changes.source
        if changes.owner:
            body["Owner"] = {"id": await self._user_id(changes.owner)}
        if existing is None:
            body.setdefault("Last_Name", changes.name or changes.email.split("@")[0])
            if record_type == LEAD:
                body.setdefault("Company", changes.fields.get("company") or body["Last_Name"])
            [details] = written(await self.client.call("POST", f"/{MODULES[record_type]}", json={"data": [body]}))
            rid = record_id(record_type, str(details["id"]))
        else:
            rid = existing.id
            await self.client.call("PUT", f"/{MODULES[record_type]}/{split_id(rid)[1]}", json={"data": [body]})
        for deal in changes.deals:
            if deal.id:
                raise FailedPrecondition("updating deals through UpsertRecord is not supported for Zoho CRM: edit them in Zoho")
            await self.add_deal(await self._must(rid), NewDeal("", deal.name, deal.stage, deal.amount, deal.closing_date))
        return await self._must(rid), existing is None

    async def create(self, new: NewRecord) -> tuple[Record, bool]:
        existing = await self.find(new.email)
        if existing is not None:
            return existing, False
        body = {
            "Email": new.email,
            "Last_Name": new.name or new.email.split("@")[0],
            **fields_out(new.type, {k: v for k, v in new.fields.items() if v}),
        }
        if new.source:
            body["Lead_Source"] = new.source
        if new.owner:
            body["Owner"] = {"id": await self._user_id(new.owner)}
        if new.label:
            body["Tag"] = [{"name": LABEL_TAGS[new.label]}]
        if new.type == LEAD:
            body.setdefault("Company", new.fields.get("company") or body["Last_Name"])
        if new.type == CONTACT and new.account:
            body["Account_Name"] = {"name": new.account}
        [details] = written(await self.client.call("POST", f"/{MODULES[new.type]}", json={"data": [body]}))
        return await self._must(record_id(new.type, str(details["id"]))), True

    async def update_fields(self, record: Record, fields: dict[str, str]) -> Record:
        module, zoho_id = self._where(record)
        written(await self.client.call("PUT", f"/{module}/{zoho_id}", json={"data": [fields_out(record.type, fields)]}))
        return await self._must(record.id)

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

    # --- helpers -------------------------------------------------------------------------

    async def _complete(self, record_type: str, data: dict) -> Record:
        owner = data.get("Owner") or {}
        owner_email = owner.get("email") or (await self._users_by_id()).get(str(owner.get("id", "")), "")
        record = to_record(record_type, data, self.custom, owner_email)
        if record_type != CONTACT:
            return record
        deals = records_of(await self.client.call("GET", f"/Contacts/{data['id']}/Deals", params={"fields": _DEAL_FIELDS}))
        account = data.get("Account_Name")
        company = {}
        if isinstance(account, dict) and account.get("id"):
            company = account_fields((records_of(await self.client.call("GET", f"/Accounts/{account['id']}")) or [{}])[0])
        return replace(record, deals=[to_deal(d) for d in deals], account_fields=company)

    async def _must(self, rid: str) -> Record:
        record = await self.get(rid)
        if record is None:
            raise NotFound(f"record {rid} not found in Zoho CRM")
        return record

    def _where(self, record: Record) -> tuple[str, str]:
        where = split_id(record.id)
        if where is None:
            raise NotFound(f"record {record.id} is not a Zoho CRM record")
        return where

    @staticmethod
    def _link(record: Record, zoho_id: str) -> dict:
        if record.type == CONTACT:
            return {"Who_Id": {"id": zoho_id}}
        return {"What_Id": {"id": zoho_id}, "$se_module": "Leads"}

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

    async def _users_by_id(self) -> dict[str, str]:
        if self._users is None:
            answer = await self.client.call("GET", "/users", params={"type": "ActiveUsers"})
            self._users = {str(u["id"]): str(u.get("email", "")) for u in (answer.body or {}).get("users") or []}
        return self._users

    async def _user_id(self, email: str) -> str:
        for user_id, user_email in (await self._users_by_id()).items():
            if user_email.lower() == email.lower():
                return user_id
        raise CrmRefused(f"{email} is not an active user of the Zoho CRM account", "INVALID_DATA")


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
