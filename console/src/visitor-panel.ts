// The agent's side panel for the open chat's visitor: who they are (browser, location,
// pages; VIS-02, VIS-04) and their CRM record (CRM-02): the fields the admin chose, in
// the admin's order, the company's fields for a contact, and the record's deals; a visitor
// with an e-mail no record matches can be added as a lead (CRM-03).
import { $, definitions, el, report } from "./api";
import type { AgentClients } from "./agent-context";
import type { Chat } from "./gen/kaiwa/conversation/v1/conversation_pb";
import { RecordType, WriteState, type CrmContext, type Deal } from "./gen/kaiwa/crm_bridge/v1/crm_bridge_pb";

export class VisitorPanel {
  private chat: Chat | undefined;
  private email = ""; // the chat's e-mail, else the visitor's: what the CRM is asked about

  constructor(private c: AgentClients) {
    $("crm-add").addEventListener("submit", (e) => {
      e.preventDefault();
      this.addLead().catch(report);
    });
  }

  /** Fills both panels once per opened chat. */
  show(chat: Chat) {
    if (chat.id === this.chat?.id) return;
    this.chat = chat;
    this.showVisitor(chat).catch(report);
  }

  private async showVisitor(chat: Chat) {
    const v = await this.c.visitors.getVisitor({ visitorId: chat.visitorId });
    const visit = v.currentVisit;
    const client = visit?.client;
    const where = visit?.location;
    $("visitor").replaceChildren(
      ...definitions([
        ["Name", v.name || "(unknown)"],
        ["Email", v.email],
        ["Visits", String(v.visitCount)],
        ["Chats", String(v.chatCount)],
        ["Browser", client ? `${client.browser} ${client.browserVersion} on ${client.os}` : ""],
        ["Location", where ? [where.city, where.region, where.country].filter(Boolean).join(", ") : ""],
        ["Language", visit?.language ?? ""],
        ["Pages", v.recentPageViews.map((p) => p.title || p.url).join(" · ")],
      ]),
    );
    this.email = chat.visitorEmail || v.email;
    await this.showCrm(this.email);
  }

  private async showCrm(email: string) {
    $("crm").replaceChildren();
    $("crm-deals").replaceChildren();
    $("crm-add").hidden = true;
    if (!email) {
      $("crm-message").textContent = "No e-mail known for this visitor, so no CRM record.";
      return;
    }
    const context = await this.c.crm.getContext({ email, locale: "en" });
    $("crm-message").textContent = crmSummary(context);
    $("crm-add").hidden = !context.canAddRecord;
    const record = context.record;
    if (!context.found || !record) return;
    const type = record.type === RecordType.CONTACT ? "Contact" : "Lead";
    $("crm").replaceChildren(
      ...definitions([
        ["Record", `${type}: ${record.name || record.email}`],
        ["Visitor type", record.visitorType],
        ...context.fields.map((f): [string, string] => [f.label, f.value]),
        ...context.companyFields.map((f): [string, string] => [f.label, f.value]),
      ]),
    );
    $("crm-deals").replaceChildren(...record.deals.map(dealRow));
  }

  private async addLead() {
    const chat = this.chat;
    if (!chat || !this.email) return;
    const field = (id: string) => $<HTMLInputElement>(id).value.trim();
    const result = await this.c.crm.addRecordFromChat({
      email: this.email,
      name: chat.visitorName,
      company: field("crm-company"),
      phone: field("crm-phone"),
      chatId: chat.id,
    });
    if (result.state === WriteState.DONE) return this.showCrm(this.email);
    $("crm-add").hidden = true;
    $("crm-message").textContent =
      result.state === WriteState.QUEUED ? "The CRM is away: the lead is added when it is back." : `The CRM refused the lead: ${result.error}`;
  }
}

function crmSummary(context: CrmContext): string {
  if (!context.connected) return "The CRM integration is disabled.";
  if (!context.found) return context.message || "No CRM record for this visitor.";
  const deals = context.openDealCount ? `${context.openDealCount} open deal(s), ${context.openDealAmount.toLocaleString()} in total` : "no open deals";
  return `${context.stale ? "CRM unreachable: last known data. " : ""}Linked CRM record, ${deals}.`;
}

function dealRow(deal: Deal): HTMLElement {
  const parts = [deal.name, deal.stage, deal.amount ? deal.amount.toLocaleString() : "", deal.closingDate && `closes ${deal.closingDate}`];
  return el("li", deal.open ? "deal open" : "deal", parts.filter(Boolean).join(" · "));
}
