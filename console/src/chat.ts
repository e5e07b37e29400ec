// One chat's live view, shared by both pages: history and StreamChat events rendered
// into a message list, a typing line, a countdown line and (visitor) the queue line.
import type { Client } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConversationService } from "./api";
import { el, report, time } from "./api";
import { ChatState, SenderKind, type Chat, type ChatEvent, type Message } from "./gen/kaiwa/conversation/v1/conversation_pb";

const WHO: Record<number, string> = {
  [SenderKind.VISITOR]: "visitor",
  [SenderKind.AGENT]: "agent",
  [SenderKind.BOT]: "bot",
  [SenderKind.SYSTEM]: "system",
};

export interface ChatViewOptions {
  messages: HTMLElement; // the list
  typing: HTMLElement; // "Agent is typing…"
  countdown: HTMLElement; // "Chat ends in 30 s"
  queue?: HTMLElement; // "You are number 2 in the queue"
  me: SenderKind; // whose messages are "mine"
  onSystem?: (message: Message) => void; // e.g. page_pushed on the visitor's side
  onEnded?: () => void;
  onChat?: (chat: Chat) => void; // every new state of the chat (owner, countdown, members)
}

export class ChatView {
  private lastSeq = 0n;
  private seen = new Set<string>();
  private abort = new AbortController();
  /** Whether an end countdown runs (visitor input then cancels it: CONV-06). */
  countdownRunning = false;

  constructor(
    private conv: Client<typeof ConversationService>,
    private chatId: string,
    private o: ChatViewOptions,
  ) {}

  /** History first (ListMessages), then StreamChat from after it, until stop(). */
  async follow(withHistory: boolean) {
    if (withHistory) {
      const page = await this.conv.listMessages({ chatId: this.chatId, pageSize: 500 });
      page.messages.forEach((m) => this.add(m));
    }
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      try {
        const stream = this.conv.streamChat({ chatId: this.chatId, afterSeq: this.lastSeq }, { signal: this.abort.signal });
        for await (const event of stream) {
          if (event.seq > this.lastSeq) this.lastSeq = event.seq;
          this.handle(event.event);
        }
      } catch (error) {
        if (this.abort.signal.aborted) return;
        report(error);
      }
      await new Promise((r) => setTimeout(r, Math.min(5000, 500 * (attempt + 1)))); // reconnect
    }
  }

  stop() {
    this.abort.abort();
  }

  private handle(event: ChatEvent["event"]) {
    switch (event.case) {
      case "message":
        this.add(event.value);
        break;
      case "typing": {
        const t = event.value;
        if (t.senderKind === this.o.me) break;
        this.o.typing.textContent = t.typing ? `${WHO[t.senderKind] ?? "someone"} is typing…` : "";
        break;
      }
      case "countdown": {
        const left = event.value.secondsLeft;
        this.countdownRunning = left > 0;
        this.o.countdown.textContent = left > 0 ? `This chat ends in ${left} s` : "";
        break;
      }
      case "queue":
        if (this.o.queue) {
          const q = event.value;
          this.o.queue.textContent = q.position > 0 ? `You are number ${q.position} in the queue (about ${q.estimatedWaitSeconds} s)` : "";
        }
        break;
      case "chat": {
        const chat = event.value;
        if (this.o.queue && chat.state !== ChatState.QUEUED) this.o.queue.textContent = "";
        this.countdownRunning = chat.countdownEndsAt !== undefined;
        if (chat.countdownEndsAt) {
          const left = Math.max(0, Math.round((timestampDate(chat.countdownEndsAt).getTime() - Date.now()) / 1000));
          this.o.countdown.textContent = `This chat ends in ${left} s`;
        } else this.o.countdown.textContent = "";
        if (chat.state === ChatState.ENDED || chat.state === ChatState.COMPLETED) {
          this.o.countdown.textContent = "The chat has ended.";
          this.o.onEnded?.();
        }
        this.o.onChat?.(chat);
        break;
      }
    }
  }

  add(m: Message) {
    if (m.seq > this.lastSeq) this.lastSeq = m.seq;
    if (this.seen.has(m.id)) return;
    this.seen.add(m.id);
    const who = WHO[m.senderKind] ?? "system";
    const row = el("li", `msg ${who}${m.senderKind === this.o.me ? " mine" : ""}`);
    const text = m.system ? m.system.rendered || m.system.type : m.text || m.link?.url || m.file?.name || "";
    row.append(el("span", "who", who), el("span", "text", text), el("time", "at", time(m.sentAt)));
    this.o.messages.append(row);
    row.scrollIntoView({ block: "end" });
    if (m.senderKind !== this.o.me) this.o.typing.textContent = "";
    if (m.system) this.o.onSystem?.(m);
  }
}
