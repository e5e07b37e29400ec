// The browser test's later steps: end countdowns cancelled (by the visitor's typing, by
// the agent), a colleague invited and then handed the chat, and a countdown run out.
import { shot, signIn, timeout } from "./browser.mjs";

const ENDED = "The chat has ended.";
const NOTE = "Ken knows the Osaka routes";

const countdownShown = (page) => page.locator("#countdown", { hasText: "ends in" }).waitFor({ timeout });
const countdownGone = (page) =>
  page.waitForFunction(() => document.querySelector("#countdown").textContent === "", null, { timeout });
const interruptions = (page, count) =>
  page.waitForFunction(
    (n) => [...document.querySelectorAll("#messages .msg.system .text")].filter((m) => m.textContent === "Support end interrupted").length >= n,
    count,
    { timeout },
  );

async function startCountdown(agent, visitor) {
  await agent.selectOption("#end-after", "30");
  await agent.click("#end");
  await countdownShown(visitor);
  await countdownShown(agent);
  await agent.locator("#cancel-end").waitFor({ state: "visible", timeout });
}

export async function countdownsCancelled(agent, visitor) {
  await startCountdown(agent, visitor);
  await visitor.locator("#text").pressSequentially("one more", { delay: 30 }); // CONV-06: visitor input cancels it
  await Promise.all([countdownGone(visitor), countdownGone(agent), interruptions(agent, 1), interruptions(visitor, 1)]);
  await visitor.fill("#text", "");
  await startCountdown(agent, visitor);
  await agent.click("#cancel-end");
  await Promise.all([countdownGone(visitor), countdownGone(agent), interruptions(agent, 2)]);
  await agent.locator("#cancel-end").waitFor({ state: "hidden", timeout });
}

async function optionValue(page, select, text) {
  const option = page.locator(`${select} option`, { hasText: text });
  await option.first().waitFor({ state: "attached", timeout });
  return option.first().getAttribute("value");
}

/** Aiko invites Ken, who sees the chat (and the lead's deal: returned); a transfer to the department, which Ken (its only
 * other agent online) declines; then one to Ken, which he takes over. */
export async function inviteAndTransfer(agent, ken) {
  await signIn(ken, "Ken");
  await agent.click("#refresh-team");
  await agent.selectOption("#invite-agent", await optionValue(agent, "#invite-agent", "Ken Sato (online"));
  await agent.click("#invite");
  await agent.locator("#members .member", { hasText: "Ken Sato (participant" }).waitFor({ timeout });
  await ken.locator("#my-chats .my-chat", { hasText: "Do you ship to Osaka?" }).locator("button.open").click({ timeout });
  await ken.locator("#messages .msg.visitor", { hasText: "Do you ship to Osaka?" }).waitFor({ timeout });
  await ken.locator("#crm-deals .deal", { hasText: "Osaka shipping contract" }).waitFor({ timeout });
  await shot(ken, "agent-invited");
  const crm = { summary: await ken.textContent("#crm-message"), deals: await ken.textContent("#crm-deals") };

  await agent.selectOption("#transfer-to", await optionValue(agent, "#transfer-to", "Department Support"));
  await agent.fill("#transfer-note", "Anyone in Support?");
  await agent.click("#transfer");
  await ken.locator("#transfers .transfer", { hasText: "Anyone in Support?" }).locator("button.decline").click({ timeout });
  await agent.locator("#team-status", { hasText: "declined the transfer" }).waitFor({ timeout });
  await agent.locator("#members .member", { hasText: "Aiko Tanaka (owner" }).waitFor({ timeout });

  await agent.selectOption("#transfer-to", await optionValue(agent, "#transfer-to", "Ken Sato"));
  await agent.fill("#transfer-note", NOTE);
  await agent.click("#transfer");
  await agent.locator("#team-status", { hasText: "waiting for an answer" }).waitFor({ timeout });
  const transfer = ken.locator("#transfers .transfer", { hasText: NOTE });
  await transfer.waitFor({ timeout });
  await shot(agent, "agent-transfer");
  await transfer.locator("button.accept").click();
  await ken.locator("#members .member", { hasText: "Ken Sato (owner" }).waitFor({ timeout });
  await agent.locator("#members .member", { hasText: "Ken Sato (owner" }).waitFor({ timeout });
  await shot(ken, "agent-taken-over");
  return crm;
}

/** Ken ends the chat with a 30 s countdown, which runs out on both screens. */
export async function endWithCountdown(ken, visitor) {
  await startCountdown(ken, visitor);
  await shot(visitor, "visitor-chat");
  const runOut = { timeout: 30_000 + timeout };
  await visitor.locator("#countdown", { hasText: ENDED }).waitFor(runOut);
  await ken.locator("#countdown", { hasText: ENDED }).waitFor(runOut);
  await shot(visitor, "visitor-ended");
  await shot(ken, "agent-ended");
  return { agent: await ken.textContent("#countdown"), visitor: await visitor.textContent("#countdown") };
}
