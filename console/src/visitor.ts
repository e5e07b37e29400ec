// The visitor widget: a visitor token from the widget key, StartChat, then the chat
// live (queue position, typing, countdown, a page the agent pushes). Any input while the
// end countdown runs cancels it (CONV-06: the service does so on the visitor's typing).
import { $, ConversationService, VisitorService, connect, gatewayUrl, report, typingNotifier } from "./api";
import { ChatView } from "./chat";
import { Channel, SenderKind, type Message } from "./gen/kaiwa/conversation/v1/conversation_pb";

const params = new URLSearchParams(location.search);
let token = "";
const client = connect(await gatewayUrl(), () => token);
const conv = client(ConversationService);
const visitors = client(VisitorService);
$<HTMLInputElement>("key").value = params.get("key") ?? "";

$("start").addEventListener("submit", (e) => {
  e.preventDefault();
  start().catch((error) => {
    $<HTMLButtonElement>("start-chat").disabled = false; // e.g. a field refused: fix it and retry
    report(error);
  });
});

async function start() {
  $<HTMLButtonElement>("start-chat").disabled = true;
  if (!token) await becomeVisitor();
  const chat = await conv.startChat({
    channel: Channel.WEB,
    departmentId: params.get("department") ?? "",
    visitorName: $<HTMLInputElement>("name").value,
    visitorEmail: $<HTMLInputElement>("email").value.trim(),
    question: $<HTMLInputElement>("question").value,
  });
  $("start").hidden = true;
  $("status").textContent = "";
  $("chat").hidden = false;
  if (chat.queuePosition > 0) $("queue").textContent = `You are number ${chat.queuePosition} in the queue`;
  const view = new ChatView(conv, chat.id, {
    messages: $("messages"),
    typing: $("typing"),
    countdown: $("countdown"),
    queue: $("queue"),
    me: SenderKind.VISITOR,
    onSystem: offerPage,
    onEnded: () => ($<HTMLButtonElement>("send").disabled = true),
  });
  view.follow(true).catch(report);

  const input = $<HTMLInputElement>("text");
  const notify = (typing: boolean) => conv.notifyTyping({ chatId: chat.id, typing });
  const typing = typingNotifier(notify);
  input.addEventListener("input", () => {
    // The notifier tells only the start of a burst of keys; a countdown needs every one.
    if (view.countdownRunning) notify(true).catch(report);
    typing();
  });
  $("compose").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    conv.sendMessage({ chatId: chat.id, text, clientMessageId: crypto.randomUUID() }).then((m) => view.add(m), report);
  });
}

/** A visitor token from the widget key (once: a retried start stays the same visitor). */
async function becomeVisitor() {
  const issued = await visitors.issueVisitorToken({ widgetKey: $<HTMLInputElement>("key").value.trim() });
  token = issued.token;
  await visitors
    .trackPageView({ url: location.href, title: document.title, userAgent: navigator.userAgent, language: navigator.language })
    .catch(() => undefined); // visitor details for the agent; the chat works without
}

/** A page_pushed system message: ask before opening the page the agent suggests. */
function offerPage(message: Message) {
  if (message.system?.type !== "page_pushed") return;
  const url = message.system.params.url;
  $("push-text").textContent = `The agent suggests a page: ${url}`;
  $("push").hidden = false;
  $("push-open").onclick = () => {
    $("push").hidden = true;
    window.open(url, "_blank", "noopener");
    visitors.trackPageView({ url, userAgent: navigator.userAgent }).catch(report);
  };
  $("push-dismiss").onclick = () => ($("push").hidden = true);
}
