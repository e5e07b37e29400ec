// The agent console: sign in with a token, go online, offers (StreamOffers) with accept
// and decline, the chat with its history and the visitor's details, messages and #
// commands, the AI rewrite (tone, length, the suggested tone) and ending with a countdown.
import { $, AiAssistService, ConversationService, RoutingService, VisitorService } from "./api";
import { claims, connect, el, gatewayUrl, report, typingNotifier } from "./api";
import { ChatView } from "./chat";
import { Length, Tone } from "./gen/kaiwa/ai_assist/v1/ai_assist_pb";
import { SenderKind } from "./gen/kaiwa/conversation/v1/conversation_pb";
import { Availability, type Offer } from "./gen/kaiwa/routing/v1/routing_pb";

const TONES: Record<number, string> = { [Tone.FORMAL]: "formal", [Tone.CASUAL]: "casual", [Tone.POLITE]: "polite", [Tone.ASSERTIVE]: "assertive", [Tone.HUMOROUS]: "humorous" };

let token = new URLSearchParams(location.search).get("token") ?? sessionStorage.getItem("kaiwa-agent-token") ?? "";
const client = connect(await gatewayUrl(), () => token);
const routing = client(RoutingService);
const conv = client(ConversationService);
const visitors = client(VisitorService);
const ai = client(AiAssistService);
let chatId = "";
let view: ChatView | undefined;
$<HTMLInputElement>("token").value = token;

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  signIn().catch(report);
});

async function signIn() {
  token = $<HTMLInputElement>("token").value.trim();
  sessionStorage.setItem("kaiwa-agent-token", token);
  const agent = await routing.getAgent({ agentId: claims(token).sub });
  $("me").textContent = `${agent.name} <${agent.email}>`;
  $("signin").hidden = true;
  $("online").hidden = false;
  $("status").textContent = "";
  watchOffers().catch(report);
}

$("online").addEventListener("click", () => {
  routing.setAvailability({ availability: Availability.ONLINE }).then(() => {
    $("online").textContent = "Online";
    $<HTMLButtonElement>("online").disabled = true;
  }, report);
});

async function watchOffers() {
  for (;;) {
    try {
      for await (const update of routing.streamOffers({})) {
        if (!update.offer) continue;
        document.getElementById(`offer-${update.offer.chatId}`)?.remove();
        if (!update.withdrawn) showOffer(update.offer);
      }
    } catch (error) {
      report(error);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function showOffer(offer: Offer) {
  const row = el("li", "offer");
  row.id = `offer-${offer.chatId}`;
  row.append(el("strong", "", offer.visitorName || "Visitor"), el("span", "question", offer.question));
  const accept = el("button", "accept", "Accept");
  const decline = el("button", "decline", "Decline");
  accept.onclick = () =>
    routing.acceptChat({ chatId: offer.chatId }).then(() => {
      row.remove();
      return openChat(offer.chatId);
    }).catch(report);
  decline.onclick = () => routing.declineChat({ chatId: offer.chatId, reason: "busy" }).then(() => row.remove(), report);
  row.append(accept, decline);
  $("offers").append(row);
}

async function openChat(id: string) {
  view?.stop();
  chatId = id;
  $("messages").replaceChildren();
  $("chat").hidden = false;
  const chat = await conv.getChat({ chatId: id });
  $("chat-title").textContent = `${chat.visitorName || "Visitor"}: ${chat.question}`;
  view = new ChatView(conv, id, { messages: $("messages"), typing: $("typing"), countdown: $("countdown"), me: SenderKind.AGENT });
  view.follow(true).catch(report);
  showVisitor(chat.visitorId).catch(report);
  suggestTone().catch(report);
}

async function showVisitor(visitorId: string) {
  const v = await visitors.getVisitor({ visitorId });
  const visit = v.currentVisit;
  const client = visit?.client;
  const where = visit?.location;
  const rows: [string, string][] = [
    ["Name", v.name || "(unknown)"],
    ["Email", v.email],
    ["Visits", String(v.visitCount)],
    ["Chats", String(v.chatCount)],
    ["Browser", client ? `${client.browser} ${client.browserVersion} on ${client.os}` : ""],
    ["Location", where ? [where.city, where.region, where.country].filter(Boolean).join(", ") : ""],
    ["Language", visit?.language ?? ""],
    ["CRM", v.crm ? "linked record" : "no record"],
    ["Pages", v.recentPageViews.map((p) => p.title || p.url).join(" · ")],
  ];
  $("visitor").replaceChildren(...rows.filter(([, value]) => value).flatMap(([k, value]) => [el("dt", "", k), el("dd", "", value)]));
}

async function suggestTone() {
  const s = await ai.suggestTone({ chatId, locale: "en" });
  if (s.suggestedTone === Tone.UNSPECIFIED) return;
  $("suggested").textContent = `Suggested: ${TONES[s.suggestedTone]} (${s.reason})`;
  $<HTMLSelectElement>("tone").value = String(s.suggestedTone);
}

const draft = $<HTMLTextAreaElement>("draft");
draft.addEventListener("input", typingNotifier((typing) => (chatId ? conv.notifyTyping({ chatId, typing }) : Promise.resolve())));
draft.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $<HTMLFormElement>("compose").requestSubmit();
  }
});

$("compose").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = draft.value.trim();
  if (!text || !chatId) return;
  draft.value = "";
  if (text.startsWith("#")) {
    conv.runCommand({ chatId, text, locale: "en" }).then((reply) => {
      $("command-reply").textContent = reply.text;
      $("command-reply").hidden = false;
    }, report);
  } else {
    conv.sendMessage({ chatId, text, clientMessageId: crypto.randomUUID() }).then((m) => view?.add(m), report);
  }
});

$("rewrite").addEventListener("click", () => {
  const tone = Number($<HTMLSelectElement>("tone").value) as Tone;
  const length = Number($<HTMLSelectElement>("length").value) as Length;
  ai.rewrite({ text: draft.value, tone, length, chatId }).then((r) => (draft.value = r.text), report);
});

$("end").addEventListener("click", () => {
  const countdownSeconds = Number($<HTMLSelectElement>("end-after").value);
  conv.endChat({ chatId, countdownSeconds, locale: "en" }).then((chat) => {
    if (countdownSeconds) $("countdown").textContent = `This chat ends in ${countdownSeconds} s`;
    else if (chat.endedAt) $("countdown").textContent = "The chat has ended.";
  }, report);
});
