// `cargo xtask package`: the Chrome Web Store's screenshots, of the real
// popup. A tether-server and `tether` CLI users (alice, her contacts bob,
// carol and dave), the built extension (dist/chrome) linked to alice by QR;
// her contacts write to her (chats, a group, a link, a file), then the
// popup is shot at twice its size, light and dark: the chat list and open
// chats. Each shot goes on a 1280 × 800 page with a one-line caption,
// which Chromium renders; the PNGs are checked (size, not blank) and
// written to TETHER_STORE_OUT (default dist/store) as screenshot-N.png.
// The popup's own shots stay in TETHER_ARTIFACTS (default test-artifacts).
//
//     TETHER_EXTENSION=dist/chrome TETHER_SERVER_BIN=… TETHER_CLI_BIN=… node tests/e2e/store-screenshots.mjs

import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PNG } from "pngjs";
import { ARTIFACTS, launch, linkByQr } from "./lib/extension.mjs";
import { aliceAndBob, cliUser, startServer, until } from "./lib/tether.mjs";

const OUT = path.resolve(process.env.TETHER_STORE_OUT ?? "dist/store");
/** The Chrome Web Store's screenshot size. */
const SIZE = { width: 1280, height: 800 };
/** The popup's size (popup/popup.css) and the scale it is shot at. */
const POPUP = { width: 380, height: 560, scale: 2 };

/** The store's screenshots, in the listing's order: which shot, and its caption. */
const SCREENSHOTS = [
  { shot: "chats-light", caption: "Your chats, one click away in the toolbar" },
  { shot: "chat-light", caption: "Replies and reactions, end-to-end encrypted" },
  { shot: "group-dark", caption: "Plan it together in group chats" },
  { shot: "share-light", caption: "Send pages, links and files to any chat" },
  { shot: "chats-dark", caption: "See what is unread at a glance" },
];

const server = await startServer();
const users = [];
const scratch = await mkdtemp(path.join(tmpdir(), "tether-store-"));
let ext;
try {
  // ---- The people: alice (whose browser this is), bob, carol, dave.
  const { alice, bob } = await aliceAndBob(server);
  const [carol, dave] = await Promise.all([cliUser(), cliUser()]);
  users.push(alice, bob, carol, dave);
  await carol.run(["register", "carol", "--server", server.url]);
  await dave.run(["register", "dave", "--server", server.url]);
  await alice.run(["contacts", "add", "carol", "--name", "Carol"]);
  await alice.run(["contacts", "add", "dave", "--name", "Dave"]);
  for (const u of [carol, dave]) await u.run(["contacts", "add", "alice", "--name", "Alice"]);

  ext = await launch();
  const popup = await linkByQr(ext, server, alice, "alice", "store-link-qr");

  // ---- What they write, oldest first (the chat list shows the newest on top).
  const id = async (user, args) => JSON.parse((await user.run([...args, "--json"])).stdout.trim().split("\n").pop()).id;
  await alice.run(["send", "me", "Passport renewal: book an appointment before March"]);
  await carol.run(["send", "alice", "Running 10 minutes late, start without me"]);
  const booking = path.join(scratch, "Chalet booking.pdf");
  await writeFile(booking, `%PDF-1.4\n% ${"Tether store screenshot ".repeat(2600)}\n%%EOF\n`);
  await dave.run(["share", "alice", "https://en.wikipedia.org/wiki/Chamonix", "--title", "Chamonix - Wikipedia", "--text", "Chamonix-Mont-Blanc is a resort area near the junction of France, Switzerland and Italy."]);
  await dave.run(["send", "alice", "Found the place for the trip. Thoughts?"]);
  await alice.run(["send", "dave", "Looks perfect. Is the chalet still free?"]);
  await dave.run(["send-file", "alice", booking, "--caption", "Booked! Here's the confirmation"]);

  await alice.run(["group", "create", "Ski trip", "--members", "bob,carol,dave"]);
  for (const u of [bob, carol, dave]) await u.run(["chats"]);
  await carol.run(["send", "Ski trip", "Who's bringing the map?"]);
  await dave.run(["send", "Ski trip", "I've got it, and the avalanche beacons"]);
  await alice.run(["send", "Ski trip", "I'll book the train for Friday morning"]);
  await bob.run(["send", "Ski trip", "Chalet check-in is at 4 pm on Saturday"]);
  await carol.run(["send", "Ski trip", "Can't wait ⛷️"]);

  // (`chats` first: a user's CLI has a message once it has connected since.)
  const friday = await id(bob, ["send", "alice", "Are we still on for Friday?"]);
  await alice.run(["chats"]);
  const yes = await id(alice, ["reply", friday, "Yes! 7:30 at Luigi's?"]);
  await bob.run(["chats"]);
  const table = await id(bob, ["send", "alice", "Perfect, I'll book a table for four 🍝"]);
  await bob.run(["react", yes, "👍"]);
  await alice.run(["chats"]);
  await alice.run(["react", table, "❤️"]);
  await alice.run(["send", "bob", "Great, I'll bring dessert"]);
  await bob.run(["send", "alice", "Can you send me that lemon pasta recipe?"]);
  await bob.run(["send", "alice", "Anna wants to try it this weekend"]);

  // ---- The popup has it all.
  await until(async () => (await popup.locator("#chat-list [data-chat]").count()) >= 5, "five chats in the popup", 30000);
  await until(async () => (await popup.locator('#chat-list [data-chat="bob"]').textContent())?.includes("Anna wants"), "bob's last message in the list", 30000);

  // The popup at twice its size (a persistent context cannot change its
  // scale for one page: CDP can), shot by CDP at that scale.
  const cdp = await ext.context.newCDPSession(popup);
  await cdp.send("Emulation.setDeviceMetricsOverride", { width: POPUP.width, height: POPUP.height, deviceScaleFactor: POPUP.scale, mobile: false });
  /** @type {Record<string, Buffer>} */
  const shots = {};
  const shoot = async (name, scheme) => {
    await popup.emulateMedia({ colorScheme: scheme });
    await popup.waitForSelector("#toast", { state: "hidden", timeout: 8000 });
    await popup.mouse.move(POPUP.width - 10, POPUP.height - 10);
    await popup.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.blur());
    await popup.waitForTimeout(400);
    const { data } = await cdp.send("Page.captureScreenshot", { format: "png" });
    shots[`${name}-${scheme}`] = Buffer.from(data, "base64");
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(path.join(ARTIFACTS, `store-popup-${name}-${scheme}.png`), shots[`${name}-${scheme}`]);
  };
  for (const scheme of ["light", "dark"]) await shoot("chats", scheme);

  await popup.click('#chat-list [data-chat="bob"] .chat-open');
  await popup.waitForSelector('#messages .msg:has-text("Anna wants to try it")', { timeout: 15000 });
  await popup.waitForSelector('#messages .reaction[data-emoji="👍"]', { timeout: 15000 });
  for (const scheme of ["light", "dark"]) await shoot("chat", scheme);

  await popup.click("#back");
  await popup.locator("#chat-list [data-chat]").filter({ hasText: "Ski trip" }).locator(".chat-open").click();
  await popup.waitForSelector('#messages .msg:has-text("Can\'t wait")', { timeout: 15000 });
  for (const scheme of ["light", "dark"]) await shoot("group", scheme);

  await popup.click("#back");
  await popup.click('#chat-list [data-chat="dave"] .chat-open');
  await popup.waitForSelector('#messages .msg:has-text("Chalet booking.pdf")', { timeout: 15000 });
  for (const scheme of ["light", "dark"]) await shoot("share", scheme);
  await cdp.detach();

  // ---- Each on a 1280 × 800 page with its caption.
  const page = await ext.context.newPage();
  await page.setViewportSize(SIZE);
  const icon = (await readFile(path.resolve("icons/icon-128.png"))).toString("base64");
  await mkdir(OUT, { recursive: true });
  for (const [i, { shot, caption }] of SCREENSHOTS.entries()) {
    const dark = shot.endsWith("-dark");
    await page.setContent(canvas(shots[shot].toString("base64"), icon, caption, dark));
    await page.evaluate(() => document.fonts.ready);
    const png = await page.screenshot({ type: "png" });
    check(png, `screenshot-${i + 1}.png (${shot})`);
    await writeFile(path.join(OUT, `screenshot-${i + 1}.png`), png);
    console.log(`${path.join(OUT, `screenshot-${i + 1}.png`)}: ${shot}, “${caption}”`);
  }
  await page.close();
} finally {
  await ext?.close();
  await server.stop();
  for (const u of users) await u.cleanup();
  await rm(scratch, { recursive: true, force: true });
}

/**
 * The page a store screenshot is: the caption on the left, the popup shot
 * (shown at 8/7 of its size: 640 px high) on the right, as a browser
 * shows it, under the toolbar.
 */
function canvas(popupPng, iconPng, caption, dark) {
  const [bg1, bg2, text, muted] = dark ? ["#0d1f1d", "#151a2b", "#eceef2", "#9aa1ad"] : ["#e3f5f1", "#e9ebfb", "#14161a", "#5b6270"];
  const h = 640;
  const w = Math.round((POPUP.width * h) / POPUP.height);
  return `<!doctype html><html><head><meta charset="utf-8"><style>
    html, body { margin: 0; width: ${SIZE.width}px; height: ${SIZE.height}px; overflow: hidden; }
    body { font-family: system-ui, "Liberation Sans", sans-serif; background: linear-gradient(135deg, ${bg1}, ${bg2});
      display: flex; align-items: center; gap: 72px; padding: 0 96px; box-sizing: border-box; color: ${text}; }
    .text { flex: 1; }
    .brand { display: flex; align-items: center; gap: 14px; font-size: 28px; font-weight: 700; color: ${muted}; margin-bottom: 28px; }
    .brand img { width: 48px; height: 48px; }
    h1 { font-size: 46px; line-height: 1.15; font-weight: 700; margin: 0; letter-spacing: -0.01em; }
    .popup { width: ${w}px; height: ${h}px; border-radius: 12px; overflow: hidden; flex: none;
      box-shadow: 0 24px 60px rgba(0, 0, 0, ${dark ? 0.6 : 0.22}), 0 0 0 1px rgba(${dark ? "255, 255, 255, 0.08" : "0, 0, 0, 0.08"}); }
    .popup img { width: 100%; height: 100%; display: block; }
  </style></head><body>
    <div class="text"><div class="brand"><img src="data:image/png;base64,${iconPng}" alt="">Tether</div><h1>${caption}</h1></div>
    <div class="popup"><img src="data:image/png;base64,${popupPng}" alt=""></div>
  </body></html>`;
}

/** Fails unless `png` is exactly 1280 × 800 and shows something (many colours). */
function check(png, what) {
  const img = PNG.sync.read(png);
  if (img.width !== SIZE.width || img.height !== SIZE.height) throw new Error(`${what} is ${img.width} × ${img.height}, not ${SIZE.width} × ${SIZE.height}`);
  const colours = new Set();
  for (let i = 0; i < img.data.length; i += 4 * 97) colours.add(img.data.readUInt32BE(i));
  if (colours.size < 200) throw new Error(`${what} looks blank (${colours.size} colours)`);
}
