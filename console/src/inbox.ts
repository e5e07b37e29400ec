// What comes to the agent: offers (StreamOffers, live) with accept and decline, transfers
// addressed to them (ListTransfers: routing streams none, so it is polled, as the XMPP
// bridge does) with accept and decline, and their open chats (ListAgentChats, polled),
// which is where a chat they were invited into or took over appears.
import { $, el, every, report } from "./api";
import type { AgentClients, Colleagues } from "./agent-context";
import { ChatState, type ChatHistory } from "./gen/kaiwa/conversation/v1/conversation_pb";
import type { Offer, Transfer } from "./gen/kaiwa/routing/v1/routing_pb";

const POLL_MS = 2000;

export class Inbox {
  private shown = { transfers: "", chats: "" }; // what the lists show: redrawn only on a change

  constructor(
    private c: AgentClients,
    private colleagues: Colleagues,
    private myId: string,
    private open: (chatId: string) => Promise<void>,
    private openChatId: () => string,
  ) {}

  start() {
    this.watchOffers().catch(report);
    every(POLL_MS, () => this.showTransfers());
    every(POLL_MS, () => this.showMyChats());
  }

  private async watchOffers() {
    for (;;) {
      try {
        for await (const update of this.c.routing.streamOffers({})) {
          if (!update.offer) continue;
          document.getElementById(`offer-${update.offer.chatId}`)?.remove();
          if (!update.withdrawn) $("offers").append(this.offerRow(update.offer));
        }
      } catch (error) {
        report(error);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  private offerRow(offer: Offer): HTMLElement {
    const row = el("li", "offer");
    row.id = `offer-${offer.chatId}`;
    row.append(el("strong", "", offer.visitorName || "Visitor"), el("span", "question", offer.question));
    const accept = button("accept", "Accept", () =>
      this.c.routing.acceptChat({ chatId: offer.chatId }).then(() => {
        row.remove();
        return this.open(offer.chatId);
      }),
    );
    const decline = button("decline", "Decline", () =>
      this.c.routing.declineChat({ chatId: offer.chatId, reason: "busy" }).then(() => row.remove()),
    );
    row.append(accept, decline);
    return row;
  }

  private async showTransfers() {
    const { transfers } = await this.c.routing.listTransfers({});
    const key = transfers.map((t) => t.id).join();
    if (key === this.shown.transfers) return;
    this.shown.transfers = key;
    if (transfers.some((t) => !this.colleagues.knows(t.fromAgentId))) await this.colleagues.refresh();
    $("transfers").replaceChildren(...transfers.map((t) => this.transferRow(t)));
  }

  private transferRow(t: Transfer): HTMLElement {
    const row = el("li", "transfer");
    row.id = `transfer-${t.id}`;
    row.append(el("strong", "", `From ${this.colleagues.name(t.fromAgentId)}`), el("span", "note", t.note || "(no note)"));
    const answer = (accept: boolean) => () =>
      this.c.routing.answerTransfer({ transferId: t.id, accept, reason: accept ? "" : "busy" }).then(() => {
        row.remove();
        if (accept) return this.open(t.chatId);
      });
    row.append(button("accept", "Take over", answer(true)), button("decline", "Decline", answer(false)));
    return row;
  }

  /** Open chats the agent is (still) in: their own, taken over, or invited into. */
  private async showMyChats() {
    const { chats } = await this.c.conv.listAgentChats({ pageSize: 20 });
    const mine = chats.filter((h) => isOpenFor(h, this.myId));
    const key = `${mine.map((h) => h.chat!.id).join()}/${this.openChatId()}`;
    if (key === this.shown.chats) return;
    this.shown.chats = key;
    $("my-chats").replaceChildren(
      ...mine.map((h) => {
        const chat = h.chat!;
        const row = el("li", chat.id === this.openChatId() ? "my-chat current" : "my-chat");
        row.id = `my-chat-${chat.id}`;
        row.append(el("span", "question", `${chat.visitorName || "Visitor"}: ${chat.question}`));
        row.append(button("open", "Open", () => this.open(chat.id)));
        return row;
      }),
    );
  }
}

function isOpenFor(history: ChatHistory, agentId: string): boolean {
  const chat = history.chat;
  if (!chat || chat.state !== ChatState.OPEN) return false;
  return chat.participants.some((p) => p.agentId === agentId && p.leftAt === undefined);
}

function button(className: string, label: string, action: () => Promise<unknown>): HTMLButtonElement {
  const node = el("button", className, label) as HTMLButtonElement;
  node.onclick = () => action().catch(report);
  return node;
}
