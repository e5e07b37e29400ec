// The agent console's page: sign in with a token, go online, then the inbox (offers,
// transfers, open chats), the open chat, its visitor and CRM record, and the team tools.
import { $, claims, gatewayUrl, report } from "./api";
import { ChatPane } from "./agent-chat";
import { Colleagues, agentClients } from "./agent-context";
import { Inbox } from "./inbox";
import { TeamTools } from "./team-tools";
import { VisitorPanel } from "./visitor-panel";
import { Availability } from "./gen/kaiwa/routing/v1/routing_pb";

const TOKEN_KEY = "kaiwa-agent-token";
let token = new URLSearchParams(location.search).get("token") ?? sessionStorage.getItem(TOKEN_KEY) ?? "";
const clients = agentClients(await gatewayUrl(), () => token);
$<HTMLInputElement>("token").value = token;

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  signIn().catch(report);
});

async function signIn() {
  token = $<HTMLInputElement>("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  const myId = claims(token).sub;
  const me = await clients.routing.getAgent({ agentId: myId });
  $("me").textContent = `${me.name} <${me.email}>`;
  $("signin").hidden = true;
  $("online").hidden = false;
  $("status").textContent = "";

  const colleagues = new Colleagues(clients.routing);
  const pane = new ChatPane(clients, myId);
  const visitor = new VisitorPanel(clients);
  const team = new TeamTools(clients, colleagues, myId);
  pane.listeners.push((chat) => visitor.show(chat), (chat) => team.update(chat));
  pane.systemListeners.push((message) => team.transferOutcome(message));
  await colleagues.refresh();
  new Inbox(clients, colleagues, myId, (chatId) => pane.open(chatId), () => pane.chatId).start();
}

$("online").addEventListener("click", () => {
  clients.routing.setAvailability({ availability: Availability.ONLINE }).then(() => {
    $("online").textContent = "Online";
    $<HTMLButtonElement>("online").disabled = true;
  }, report);
});
