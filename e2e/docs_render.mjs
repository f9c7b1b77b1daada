// Renders Picard's /docs in headless Chromium (Debian's, driven by
// playwright-core) and fails if the page makes any request outside Picard
// or does not show the API's operations. Usage: node docs_render.mjs URL SCREENSHOT
import { chromium } from "playwright-core";

const [base, shot] = process.argv.slice(2);
const origin = new URL(base).origin;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const foreign = [];
try {
  const page = await browser.newPage();
  page.on("request", (req) => {
    const u = new URL(req.url());
    if (u.protocol !== "data:" && u.origin !== origin) foreign.push(req.url());
  });
  await page.goto(base + "/docs", { waitUntil: "networkidle" });
  await page.waitForSelector(".opblock", { timeout: 15000 });
  const ops = await page.$$eval(".opblock-summary-path", (els) => els.map((e) => e.textContent.trim()));
  const title = await page.textContent(".info .title");
  if (shot) await page.screenshot({ path: shot, fullPage: false });
  console.log(JSON.stringify({ title, operations: ops, foreign }));
  if (foreign.length > 0) {
    console.error("external requests: " + foreign.join(", "));
    process.exit(1);
  }
  if (!ops.includes("/api/tools")) {
    console.error("the /api/tools operation is not rendered");
    process.exit(1);
  }
} finally {
  await browser.close();
}
