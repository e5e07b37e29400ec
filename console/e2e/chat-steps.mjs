// The browser test's chat steps: a chat started and accepted (with the visitor's details
// and CRM record), replies live both ways, markup kept as text, the AI rewrite, a pushed page.
import { askTest, env, shot, signIn, timeout } from "./browser.mjs";

export const MARKUP = "<img src=x onerror=alert(1)><b>bold</b>";
const QUESTION = "Do you ship to Osaka?";

/** The visitor's e-mail matches no CRM record: Aiko adds them as a lead from the chat
 * (CRM-03); the test then gives the lead a deal, which Ken's panel shows later. */
export async function startAndAccept(agent, visitor) {
  await signIn(agent, "Aiko");
  await visitor.fill("#email", env("KAIWA_VISITOR_EMAIL"));
  await visitor.fill("#question", QUESTION);
  await visitor.click("#start-chat");
  await visitor.locator("#messages .msg.visitor", { hasText: QUESTION }).waitFor({ timeout });
  await agent.locator(".offer", { hasText: QUESTION }).locator("button.accept").click({ timeout });
  await agent.locator("#messages .msg.visitor", { hasText: QUESTION }).waitFor({ timeout });
  await agent.locator("#visitor dt", { hasText: "Browser" }).waitFor({ timeout });
  await agent.locator("#crm-add").waitFor({ timeout });
  await agent.fill("#crm-company", "Osaka Trading");
  await agent.fill("#crm-phone", "06-1234-5678");
  await agent.click("#crm-add-button");
  await agent.locator("#crm dd", { hasText: "Osaka Trading" }).waitFor({ timeout });
  await agent.locator("#crm-add").waitFor({ state: "hidden", timeout });
  await shot(agent, "agent-crm");
  const record = await agent.textContent("#crm");
  if ((await askTest("lead-added")) !== "deal-added") throw new Error("the test did not add the deal");
  return record;
}

/** The agent's typing, then their reply, reach the visitor live; the visitor answers. */
export async function replyLive(agent, visitor) {
  await agent.locator("#draft").pressSequentially("Yes", { delay: 20 });
  await visitor.locator("#typing", { hasText: "typing" }).waitFor({ timeout });
  await agent.fill("#draft", "Yes, we ship to Osaka in two days.");
  await agent.click("#send");
  await visitor.locator("#messages .msg.agent", { hasText: "we ship to Osaka in two days" }).waitFor({ timeout });
  await visitor.fill("#text", "Great, thanks!");
  await visitor.click("#send");
  await agent.locator("#messages .msg.visitor", { hasText: "Great, thanks!" }).waitFor({ timeout });
}

/** Markup sent each way shows as its literal text: no element made, no script run. */
export async function markupStaysText(agent, visitor) {
  await visitor.fill("#text", MARKUP);
  await visitor.click("#send");
  const agentSees = await messageText(agent, "visitor", MARKUP);
  await agent.fill("#draft", MARKUP);
  await agent.click("#send");
  const visitorSees = await messageText(visitor, "agent", MARKUP);
  for (const page of [agent, visitor]) {
    const made = await page.locator("#messages img, #messages b, #messages script").count();
    if (made) throw new Error(`${page.who}: a message made ${made} element(s) from its markup`);
  }
  return { agent: agentSees, visitor: visitorSees };
}

async function messageText(page, sender, text) {
  const selector = `#messages .msg.${sender} .text`;
  await page.waitForFunction(
    ([s, t]) => [...document.querySelectorAll(s)].some((node) => node.textContent === t),
    [selector, text],
    { timeout },
  );
  return page.locator(selector).last().textContent();
}

/** The rewrite with the polite tone lands in the draft box; sent, the visitor gets it. */
export async function rewriteAndSend(agent, visitor) {
  const draft = env("KAIWA_DRAFT");
  await agent.fill("#draft", draft);
  await agent.selectOption("#tone", { label: "polite" });
  await agent.click("#rewrite");
  await agent.waitForFunction((d) => { const v = document.querySelector("#draft").value; return v && v !== d; }, draft, { timeout });
  await agent.locator("#rewrite-state", { hasText: "Rewritten" }).waitFor({ timeout });
  const rewritten = await agent.inputValue("#draft");
  await agent.click("#send");
  await visitor.locator("#messages .msg.agent", { hasText: rewritten }).waitFor({ timeout });
  return rewritten;
}

/** #p: the agent pushes a page (the reply is theirs only); the visitor is asked first. */
export async function pushPage(agent, visitor) {
  await agent.fill("#draft", "#p https://example.com/shipping");
  await agent.click("#send");
  await agent.locator("#command-reply", { hasText: "example.com/shipping" }).waitFor({ timeout });
  await visitor.locator("#push", { hasText: "example.com/shipping" }).waitFor({ timeout });
  await visitor.click("#push-dismiss");
}
