// The agent's open chat: history and live events, replies and # commands, the AI rewrite
// (tone and length menus, the suggested tone) and the end, now or after a countdown the
// agent can cancel (CONV-06).
import { $, report, typingNotifier } from "./api";
import type { AgentClients } from "./agent-context";
import { ChatView } from "./chat";
import { Length, Tone } from "./gen/kaiwa/ai_assist/v1/ai_assist_pb";
import { ChatState, SenderKind, type Chat, type Message } from "./gen/kaiwa/conversation/v1/conversation_pb";

const TONES: Record<number, string> = {
  [Tone.FORMAL]: "formal",
  [Tone.CASUAL]: "casual",
  [Tone.POLITE]: "polite",
  [Tone.ASSERTIVE]: "assertive",
  [Tone.HUMOROUS]: "humorous",
};

// System messages after which the chat's members or owner have changed.
const MEMBERSHIP_CHANGES = new Set(["agent_invited", "accepted", "assigned", "transferred", "transfer_declined"]);

export class ChatPane {
  chatId = "";
  private view: ChatView | undefined;
  /** Called with the chat when it is opened and whenever its owner, state or members change. */
  readonly listeners: ((chat: Chat) => void)[] = [];
  /** Called with each system message of the open chat (history included). */
  readonly systemListeners: ((message: Message) => void)[] = [];

  constructor(
    private c: AgentClients,
    private myId: string,
  ) {
    this.wireCompose();
    this.wireRewrite();
    this.wireEnd();
  }

  async open(chatId: string) {
    this.chatId = chatId;
    const chat = await this.c.conv.getChat({ chatId });
    if (this.chatId !== chatId) return; // another chat was opened meanwhile
    this.view?.stop();
    $("messages").replaceChildren();
    for (const line of ["countdown", "typing", "suggested", "rewrite-state"]) $(line).textContent = "";
    $("command-reply").hidden = true;
    $("chat").hidden = false;
    $("chat-title").textContent = `${chat.visitorName || "Visitor"}: ${chat.question}`;
    this.view = new ChatView(this.c.conv, chatId, {
      messages: $("messages"),
      typing: $("typing"),
      countdown: $("countdown"),
      me: SenderKind.AGENT,
      onChat: (changed) => this.changed(changed),
      onSystem: (m) => this.system(m),
    });
    this.view.follow(true).catch(report);
    this.changed(chat);
    this.suggestTone().catch(report);
  }

  private system(message: Message) {
    for (const listener of this.systemListeners) listener(message);
    if (MEMBERSHIP_CHANGES.has(message.system?.type ?? "")) this.reload();
  }

  private reload() {
    this.c.conv.getChat({ chatId: this.chatId }).then((chat) => this.changed(chat), report);
  }

  private changed(chat: Chat) {
    if (chat.id !== this.chatId) return;
    const owner = chat.agentId === this.myId;
    $("owner-tools").hidden = !owner; // ending, transferring and inviting are the owner's
    $("participant-note").hidden = owner || chat.state !== ChatState.OPEN;
    $("cancel-end").hidden = chat.countdownEndsAt === undefined;
    $<HTMLButtonElement>("end").disabled = chat.state !== ChatState.OPEN;
    for (const listener of this.listeners) listener(chat);
  }

  private async suggestTone() {
    const chatId = this.chatId;
    const s = await this.c.ai.suggestTone({ chatId, locale: "en" });
    if (s.suggestedTone === Tone.UNSPECIFIED || chatId !== this.chatId) return;
    $("suggested").textContent = `Suggested: ${TONES[s.suggestedTone]} (${s.reason})`;
    $<HTMLSelectElement>("tone").value = String(s.suggestedTone);
  }

  private wireCompose() {
    const draft = $<HTMLTextAreaElement>("draft");
    const notify = (typing: boolean) => (this.chatId ? this.c.conv.notifyTyping({ chatId: this.chatId, typing }) : Promise.resolve());
    draft.addEventListener("input", typingNotifier(notify));
    draft.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        $<HTMLFormElement>("compose").requestSubmit();
      }
    });
    $("compose").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = draft.value.trim();
      if (!text || !this.chatId) return;
      draft.value = "";
      if (text.startsWith("#")) this.runCommand(text);
      else this.c.conv.sendMessage({ chatId: this.chatId, text, clientMessageId: crypto.randomUUID() }).then((m) => this.view?.add(m), report);
    });
  }

  /** A # command; its reply is for the agent only. */
  private runCommand(text: string) {
    this.c.conv.runCommand({ chatId: this.chatId, text, locale: "en" }).then((reply) => {
      $("command-reply").textContent = reply.text;
      $("command-reply").hidden = false;
    }, report);
  }

  private wireRewrite() {
    $("rewrite").addEventListener("click", () => {
      const draft = $<HTMLTextAreaElement>("draft");
      const tone = Number($<HTMLSelectElement>("tone").value) as Tone;
      const length = Number($<HTMLSelectElement>("length").value) as Length;
      $("rewrite-state").textContent = "Rewriting…";
      this.c.ai.rewrite({ text: draft.value, tone, length, chatId: this.chatId }).then(
        (r) => {
          draft.value = r.text;
          $("rewrite-state").textContent = "Rewritten: check it, then send.";
        },
        (error) => {
          $("rewrite-state").textContent = "";
          report(error);
        },
      );
    });
  }

  private wireEnd() {
    $("end").addEventListener("click", () => {
      const countdownSeconds = Number($<HTMLSelectElement>("end-after").value);
      this.c.conv.endChat({ chatId: this.chatId, countdownSeconds, locale: "en" }).then((chat) => this.changed(chat), report);
    });
    $("cancel-end").addEventListener("click", () => {
      this.c.conv.cancelEndChat({ chatId: this.chatId }).then((chat) => this.changed(chat), report);
    });
  }
}
