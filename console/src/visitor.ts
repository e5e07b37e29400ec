// The visitor widget: a visitor token from the widget key, StartChat, then the chat
// live (queue position, typing, countdown, a page the agent pushes).
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
  start().catch(report);
});

async function start() {
  $<HTMLButtonElement>("start-chat").disabled = true;
  const issued = await visitors.issueVisitorToken({ widgetKey: $<HTMLInputElement>("key").value.trim() });
  token = issued.token;
  await visitors
    .trackPageView({ url: location.href, title: document.title, userAgent: navigator.userAgent, language: navigator.language })
    .catch(() => undefined); // visitor details for the agent; the chat works without
  const chat = await conv.startChat({
    channel: Channel.WEB,
    departmentId: params.get("department") ?? "",
    visitorName: $<HTMLInputElement>("name").value,
    question: $<HTMLInputElement>("question").value,
  });
  $("start").hidden = true;
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
  input.addEventListener("input", typingNotifier((typing) => conv.notifyTyping({ chatId: chat.id, typing })));
  $("compose").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    conv.sendMessage({ chatId: chat.id, text, clientMessageId: crypto.randomUUID() }).then((m) => view.add(m), report);
  });
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
