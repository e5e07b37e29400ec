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

from ...domain import Record, RecordChanges
from ...domain.activity import Conversion, NewDeal, NewRecord
from ...domain.errors import CrmRefused
from ...domain.model import CONTACT, LEAD
from .activity import ZohoActivities
from .client import ZohoClient, records_of, written
from .mapping import LABEL_TAGS, MODULES, account_fields, fields_out, record_id, split_id, to_deal, to_record


class ZohoCrm(ZohoActivities):
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
