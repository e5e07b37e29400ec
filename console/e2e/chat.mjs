// The console in headless Chromium, driven by tests/e2e/test_plat04_console_browser.py,
// which starts the services, the gateway and the console's server and passes:
// KAIWA_VISITOR_URL, KAIWA_AGENT_URL (Aiko), KAIWA_SECOND_AGENT_URL (Ken),
// KAIWA_VISITOR_EMAIL, KAIWA_DRAFT (to rewrite), KAIWA_SHOTS (screenshot folder) and
// CHROMIUM (the browser's path). Says "lead-added" once Aiko added the visitor to the CRM
// and waits for "deal-added" on stdin; prints one JSON line of what the pages showed.
import { assertNoDialogs, env, keepFailure, launch, openPage } from "./browser.mjs";
import { markupStaysText, pushPage, replyLive, rewriteAndSend, startAndAccept } from "./chat-steps.mjs";
import { countdownsCancelled, endWithCountdown, inviteAndTransfer } from "./team-steps.mjs";

const browser = await launch();
const pages = [];
try {
  const agent = await openPage(browser, "agent", env("KAIWA_AGENT_URL"));
  const visitor = await openPage(browser, "visitor", env("KAIWA_VISITOR_URL"), 600);
  const ken = await openPage(browser, "ken", env("KAIWA_SECOND_AGENT_URL"));
  pages.push(agent, visitor, ken);

  const record = await startAndAccept(agent, visitor);
  await replyLive(agent, visitor);
  const markup = await markupStaysText(agent, visitor);
  const rewritten = await rewriteAndSend(agent, visitor);
  await pushPage(agent, visitor);
  await countdownsCancelled(agent, visitor);
  const crm = { record, ...(await inviteAndTransfer(agent, ken)) };
  const ended = await endWithCountdown(ken, visitor);
  assertNoDialogs();
  console.log(JSON.stringify({ crm, markup, rewritten, ended }));
} catch (error) {
  await keepFailure(pages);
  throw error;
} finally {
  await browser.close();
}
