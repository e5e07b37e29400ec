// Headless Chromium for the console's browser test: Debian's (no browser download),
// a new empty profile each run, pages that report their errors, fail on any dialog (a
// script a message smuggled in would show one) and save screenshots into KAIWA_SHOTS.
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const env = (name) => process.env[name] ?? (() => { throw new Error(`${name} not set`); })();
export const timeout = 20_000;
const shots = env("KAIWA_SHOTS");
const dialogs = [];

export async function launch() {
  // playwright takes the profile folder (--user-data-dir) as launchPersistentContext's argument.
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "kaiwa-chromium-")), {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync",
    ],
  });
}

/** A page named `who` in the logs; any dialog it opens is recorded and dismissed. */
export async function openPage(browser, who, url, width = 1400) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height: 900 });
  page.on("console", (m) => m.type() === "error" && console.error(`[${who} console] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[${who} page] ${e.message}`));
  page.on("dialog", (d) => {
    dialogs.push(`${who}: ${d.type()} ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.who = who;
  await page.goto(url);
  return page;
}

export function assertNoDialogs() {
  if (dialogs.length) throw new Error(`pages opened dialogs: ${dialogs.join("; ")}`);
}

export const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

/** On a failure: every page's screenshot and status line. */
export async function keepFailure(pages) {
  for (const page of pages) {
    await shot(page, `${page.who}-failed`).catch(() => {});
    console.error(`[${page.who} status] ${await page.textContent("#status").catch(() => "")}`);
  }
}

/** Signs the agent of the page's link in and, unless told otherwise, puts them online. */
export async function signIn(page, name, online = true) {
  await page.click("#signin-button");
  await page.locator("#me").filter({ hasText: name }).waitFor({ timeout });
  if (!online) return;
  await page.click("#online");
  await page.locator("#online", { hasText: "Online" }).waitFor({ timeout });
}

/** Tells the test `news` (a line on stdout) and waits for its answer (a line on stdin). */
export async function askTest(news) {
  const answers = createInterface({ input: process.stdin });
  const answered = once(answers, "line");
  console.log(news);
  const [answer] = await answered;
  answers.close();
  return answer;
}
