"""Help desk (DESK-01)."""

from __future__ import annotations

from kaiwa.crm_bridge.v1 import desk_pb2 as pb

from kaiwa_common.protobuf import timestamp

from ..domain.desk import CATEGORIES, PRIORITIES, STATUSES, Ticket
from ..handlers import desk
from ..handlers.common import Caller
from .base import Base


class DeskApi(Base):
    async def SetDeskDepartment(self, request: pb.SetDeskDepartmentRequest, context) -> pb.DeskDepartment:
        department_id, enabled = await desk.set_department(
            self.rt, Caller.current().tenant, request.department_id, request.conversion_enabled
        )
        return pb.DeskDepartment(department_id=department_id, conversion_enabled=enabled)

    async def ListDeskDepartments(self, request: pb.ListDeskDepartmentsRequest, context) -> pb.ListDeskDepartmentsResponse:
        found = await desk.departments(self.rt, Caller.current().tenant)
        return pb.ListDeskDepartmentsResponse(
            departments=[pb.DeskDepartment(department_id=d, conversion_enabled=e) for d, e in found]
        )

    async def ConvertChatToTicket(self, request: pb.ConvertChatToTicketRequest, context) -> pb.Ticket:
        numbers = (request.priority, request.status, request.category)
        ticket = await desk.convert(self.rt, Caller.current(), request.chat_id, request.message_seq, numbers, request.subject)
        return self._ticket(ticket)

    async def SearchTickets(self, request: pb.SearchTicketsRequest, context) -> pb.SearchTicketsResponse:
        found = await desk.search(self.rt, Caller.current().tenant, request.query)
        return pb.SearchTicketsResponse(tickets=[self._ticket(t) for t in found])

    async def AssociateChat(self, request: pb.AssociateChatRequest, context) -> pb.Ticket:
        return self._ticket(await desk.associate(self.rt, Caller.current().tenant, request.ticket, request.chat_id))

    async def SetTicketStatus(self, request: pb.SetTicketStatusRequest, context) -> pb.Ticket:
        return self._ticket(await desk.set_status(self.rt, Caller.current().tenant, request.ticket, request.status))

    async def ListRecentTickets(self, request: pb.ListRecentTicketsRequest, context) -> pb.SearchTicketsResponse:
        found = await desk.recent(self.rt, Caller.current().tenant, request.email, request.chat_id, request.limit)
        return pb.SearchTicketsResponse(tickets=[self._ticket(t) for t in found])

    async def GetTicket(self, request: pb.GetTicketRequest, context) -> pb.Ticket:
        return self._ticket(await desk.get(self.rt, Caller.current().tenant, request.ticket, request.chat_id))

    def _ticket(self, t: Ticket) -> pb.Ticket:
        return pb.Ticket(
            id=t.id,
            number=t.number,
            subject=t.subject,
            description=t.description,
            email=t.email,
            name=t.name,
            priority=t.priority,
            status=t.status,
            category=t.category,
            priority_name=PRIORITIES[t.priority],
            status_name=STATUSES[t.status],
            category_name=CATEGORIES[t.category],
            chat_id=t.chat_id,
            message_seq=t.message_seq,
            chat_ids=t.chat_ids,
            created_by=t.created_by,
            created_at=timestamp(t.created_at),
            updated_at=timestamp(t.updated_at),
            url=self.rt.config.ticket_link(t.number, t.id),
        )
