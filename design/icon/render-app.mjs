// Renders the phone web app's icons (app/icons/*.png) from the SVG sources
// with headless Chromium (playwright-core, installed by `cargo xtask setup`).
// The PNGs are committed; run this only after changing an SVG:
//     node design/icon/render-app.mjs
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "../../app/icons");
mkdirSync(out, { recursive: true });
const jobs = [
  ["icon.svg", 192, "icon-192.png"],
  ["icon.svg", 512, "icon-512.png"],
  ["icon-maskable.svg", 192, "maskable-192.png"],
  ["icon-maskable.svg", 512, "maskable-512.png"],
  ["icon.svg", 180, "apple-touch-icon.png"],
];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
for (const [svg, size, name] of jobs) {
  const page = await browser.newPage({ viewport: { width: size, height: size } });
  const data = readFileSync(join(here, svg), "utf8");
  await page.setContent(`<style>html,body{margin:0;background:transparent}svg{display:block;width:${size}px;height:${size}px}</style>${data}`);
  await page.screenshot({ path: join(out, name), omitBackground: true });
  await page.close();
}
await browser.close();
console.log(`icons written to ${out}`);
