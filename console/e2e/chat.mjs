// The console in headless Chromium (Debian's, via playwright-core: no browser download),
// driven by tests/e2e/test_plat04_console_browser.py, which starts the services, the
// gateway and the console's server and passes: KAIWA_VISITOR_URL, KAIWA_AGENT_URL,
// KAIWA_SHOTS (screenshot folder) and CHROMIUM (the browser's path).
// The visitor starts a chat, the agent accepts and replies, the visitor sees the reply
// live, the agent rewrites a draft politely, pushes a page (#p) the visitor is asked to
// open, and ends the chat with a countdown.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => process.env[name] ?? (() => { throw new Error(`${name} not set`); })();
const shots = env("KAIWA_SHOTS");
// A new empty profile (--user-data-dir) each run: playwright takes it as launchPersistentContext's folder.
const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "kaiwa-chromium-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1200, height: 800 },
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
  ],
});
const timeout = 20_000;
let agent, visitor;
try {
  agent = browser.pages()[0] ?? (await browser.newPage());
  visitor = await browser.newPage();
  await visitor.setViewportSize({ width: 600, height: 800 });
  for (const [who, page] of [["agent", agent], ["visitor", visitor]]) {
    page.on("console", (m) => m.type() === "error" && console.error(`[${who} console] ${m.text()}`));
    page.on("pageerror", (e) => console.error(`[${who} page] ${e.message}`));
  }

  // The agent signs in with the token in the link and goes online.
  await agent.goto(env("KAIWA_AGENT_URL"));
  await agent.click("#signin-button");
  await agent.locator("#me").filter({ hasText: "Aiko" }).waitFor({ timeout });
  await agent.click("#online");
  await agent.locator("#online", { hasText: "Online" }).waitFor({ timeout });

  // The visitor starts a chat; the agent sees the offer and accepts it.
  await visitor.goto(env("KAIWA_VISITOR_URL"));
  await visitor.fill("#question", "Do you ship to Osaka?");
  await visitor.click("#start-chat");
  await visitor.locator("#messages .msg.visitor", { hasText: "Do you ship to Osaka?" }).waitFor({ timeout });
  const offer = agent.locator(".offer", { hasText: "Do you ship to Osaka?" });
  await offer.locator("button.accept").click({ timeout });
  await agent.locator("#messages .msg.visitor", { hasText: "Do you ship to Osaka?" }).waitFor({ timeout });
  await agent.locator("#visitor dt", { hasText: "Browser" }).waitFor({ timeout });

  // The agent replies; the visitor sees it live (StreamChat), and the agent's typing first.
  await agent.locator("#draft").pressSequentially("Yes", { delay: 20 });
  await visitor.locator("#typing", { hasText: "typing" }).waitFor({ timeout });
  await agent.fill("#draft", "Yes, we ship to Osaka in two days.");
  await agent.click("#send");
  await visitor.locator("#messages .msg.agent", { hasText: "we ship to Osaka in two days" }).waitFor({ timeout });

  // The visitor answers; the agent rewrites a draft politely and sends it.
  await visitor.fill("#text", "Great, thanks!");
  await visitor.click("#send");
  await agent.locator("#messages .msg.visitor", { hasText: "Great, thanks!" }).waitFor({ timeout });
  const draft = "send me your order number";
  await agent.fill("#draft", draft);
  await agent.selectOption("#tone", { label: "polite" });
  await agent.click("#rewrite");
  await agent.waitForFunction((d) => { const v = document.querySelector("#draft").value; return v && v !== d; }, draft, { timeout });
  const polite = await agent.inputValue("#draft");
  await agent.click("#send");
  await visitor.locator("#messages .msg.agent", { hasText: polite.slice(0, 20) }).waitFor({ timeout });

  // A # command: the agent pushes a page; the visitor is asked before it opens.
  await agent.fill("#draft", "#p https://example.com/shipping");
  await agent.click("#send");
  await agent.locator("#command-reply", { hasText: "example.com/shipping" }).waitFor({ timeout });
  await visitor.locator("#push", { hasText: "example.com/shipping" }).waitFor({ timeout });
  await visitor.click("#push-dismiss");

  // The agent ends the chat with a 30 s countdown; both see it running.
  await agent.selectOption("#end-after", "30");
  await agent.click("#end");
  await agent.locator("#countdown", { hasText: "ends in" }).waitFor({ timeout });
  await visitor.locator("#countdown", { hasText: "ends in" }).waitFor({ timeout });
  const countdown = await visitor.textContent("#countdown");
  await visitor.screenshot({ path: join(shots, "visitor.png"), fullPage: true });
  await agent.screenshot({ path: join(shots, "agent.png"), fullPage: true });
  console.log(JSON.stringify({ polite, countdown }));
} catch (error) {
  for (const [who, page] of [["agent", agent], ["visitor", visitor]]) {
    await page?.screenshot({ path: join(shots, `${who}-failed.png`), fullPage: true }).catch(() => {});
    if (page) console.error(`[${who} status] ${await page.textContent("#status").catch(() => "")}`);
  }
  throw error;
} finally {
  await browser.close();
}
