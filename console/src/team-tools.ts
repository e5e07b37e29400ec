// Working on the open chat with colleagues (ROUT-06, ROUT-07): its members with their
// presence, a transfer to an agent or a department with a note, and inviting an agent.
import { $, el, report } from "./api";
import type { AgentClients, Colleagues } from "./agent-context";
import type { Chat, Message } from "./gen/kaiwa/conversation/v1/conversation_pb";
import { Availability, MemberRole, type Agent, type Member } from "./gen/kaiwa/routing/v1/routing_pb";

const PRESENCE: Record<number, string> = { [Availability.ONLINE]: "online", [Availability.AWAY]: "away", [Availability.OFFLINE]: "offline" };

export class TeamTools {
  private chatId = "";

  constructor(
    private c: AgentClients,
    private colleagues: Colleagues,
    private myId: string,
  ) {
    $("transfer").addEventListener("click", () => this.transfer().catch(report));
    $("invite").addEventListener("click", () => this.invite().catch(report));
    $("refresh-team").addEventListener("click", () => this.fillMenus().catch(report));
  }

  /** The open chat changed (or another one was opened): members and menus again. */
  update(chat: Chat) {
    if (chat.id !== this.chatId) {
      this.chatId = chat.id;
      $("team-status").textContent = "";
      this.fillMenus().catch(report);
    }
    this.showMembers().catch(report);
  }

  /** A transfer's outcome (its system message) replaces "waiting for an answer". */
  transferOutcome(message: Message) {
    const type = message.system?.type;
    if (type === "transfer_declined" || type === "transferred") $("team-status").textContent = message.system!.rendered;
  }

  private async showMembers() {
    const { members } = await this.c.routing.listMembers({ chatId: this.chatId });
    $("members").replaceChildren(...members.map(memberChip));
  }

  /** Agents (with their presence) and departments; an agent only sees others. */
  private async fillMenus() {
    const [agents, { departments }] = await Promise.all([this.colleagues.refresh(), this.c.routing.listDepartments({})]);
    const others = agents.filter((a) => a.id !== this.myId);
    const agentOptions = others.map((a) => option(`agent:${a.email}`, agentLabel(a)));
    const departmentOptions = departments.map((d) => option(`department:${d.name}`, `Department ${d.name}`));
    $("transfer-to").replaceChildren(group("Agents", agentOptions), group("Departments", departmentOptions));
    $("invite-agent").replaceChildren(...others.map((a) => option(a.id, agentLabel(a))));
  }

  private async transfer() {
    const [kind, target] = splitOnce($<HTMLSelectElement>("transfer-to").value, ":");
    if (!target) return;
    const note = $<HTMLInputElement>("transfer-note").value.trim();
    await this.c.routing.transferChat({
      chatId: this.chatId,
      toAgentEmail: kind === "agent" ? target : "",
      toDepartmentName: kind === "department" ? target : "",
      note,
      requestId: crypto.randomUUID(),
    });
    $("team-status").textContent = `Transfer to ${kind === "agent" ? target : `department ${target}`} sent; waiting for an answer.`;
  }

  private async invite() {
    const agentId = $<HTMLSelectElement>("invite-agent").value;
    if (!agentId) return;
    await this.c.routing.inviteAgent({ chatId: this.chatId, agentId });
    $("team-status").textContent = `${this.colleagues.name(agentId)} was invited into the chat.`;
    await this.showMembers();
  }
}

function memberChip(m: Member): HTMLElement {
  const role = m.role === MemberRole.OWNER ? "owner" : "participant";
  return el("li", `member ${m.online ? "online" : "offline"}`, `${m.name || m.email} (${role}, ${m.online ? "online" : "offline"})`);
}

const agentLabel = (a: Agent) => `${a.name} (${PRESENCE[a.availability] ?? "offline"}, ${a.activeChats}/${a.maxChats} chats)`;

function option(value: string, label: string): HTMLOptionElement {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = label;
  return node;
}

function group(label: string, options: HTMLOptionElement[]): HTMLOptGroupElement {
  const node = document.createElement("optgroup");
  node.label = label;
  node.append(...options);
  return node;
}

function splitOnce(value: string, separator: string): [string, string] {
  const at = value.indexOf(separator);
  return at < 0 ? [value, ""] : [value.slice(0, at), value.slice(at + 1)];
}
