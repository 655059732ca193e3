// `cargo xtask bench history`: the extension with a big history (default
// 100,000 messages in 500 chats, one of them with 5,000), made by the real
// engine (crates/client/examples/history_fixture.rs) and put where the
// extension keeps it (chrome.storage.local and IndexedDB) in a linked
// browser. Then, each over ROUNDS runs, p50 and max:
// - worker wake: stopped → core ready, and → badge set;
// - popup open → chat list painted;
// - open a chat → its last messages painted (a typical chat and the big one);
// - search for a word across everything (in the worker, through the word index);
// and the storage used. Prints them and writes target/bench/history.json.

import { readFile, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { launch, linkByQr, openPopup, stopWorkers } from "./lib/extension.mjs";
import { cliUser, startServer, until } from "./lib/tether.mjs";

const FIXTURE = process.env.TETHER_HISTORY_FIXTURE ?? "target/bench/history-fixture.json";
const ROUNDS = Number(process.env.TETHER_BENCH_ROUNDS ?? 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @param {number[]} xs */
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: Math.round(s[Math.floor((s.length - 1) / 2)] * 10) / 10, max: Math.round(s[s.length - 1] * 10) / 10, runs: s.length };
}

// The fixture's 500 contacts are looked up once after the first wake (see
// below): the bench's server lets one account do that in a burst.
const settings = path.join(await mkdtemp(path.join(tmpdir(), "tether-bench-")), "server.toml");
await writeFile(settings, "lookup_burst = 1000\nrate_burst = 2000\n");
const server = await startServer({ args: ["--config", settings] });
const alice = await cliUser();
let ext;
try {
  await alice.run(["register", "alice", "--server", server.url, "--no-phrase"]);
  ext = await launch();
  const linked = await linkByQr(ext, server, alice, "alice", "bench-history-link");
  await linked.close();

  // The fixture, into the extension's storage (from an extension page).
  const fixture = JSON.parse(await readFile(FIXTURE, "utf8"));
  const page = await ext.context.newPage();
  await page.goto(ext.popupUrl);
  const local = Object.entries(fixture.local);
  for (let i = 0; i < local.length; i += 500) {
    await page.evaluate((batch) => chrome.storage.local.set(Object.fromEntries(batch)), local.slice(i, i + 500));
  }
  const history = Object.entries(fixture.history);
  const loadStart = Date.now();
  for (let i = 0; i < history.length; i += 20000) {
    await page.evaluate(
      (batch) =>
        new Promise((resolve, reject) => {
          const open = indexedDB.open("tether-history", 1);
          open.onupgradeneeded = () => open.result.createObjectStore("history");
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const tx = open.result.transaction("history", "readwrite");
            const store = tx.objectStore("history");
            for (const [k, v] of batch) store.put(v, k);
            tx.oncomplete = () => (open.result.close(), resolve(undefined));
            tx.onerror = () => reject(tx.error);
          };
        }),
      history.slice(i, i + 20000),
    );
  }
  const chats = Object.keys(fixture.local).filter((k) => k.startsWith("kv/chats/")).length;
  const messages = history.filter(([k]) => k.startsWith("messages/")).length;
  console.log(`fixture: ${messages} messages, ${history.length} history records put in ${((Date.now() - loadStart) / 1000).toFixed(1)} s`);

  const storage = await page.evaluate(async () => ({
    estimate: await navigator.storage.estimate(),
    local: await chrome.storage.local.getBytesInUse(null),
  }));
  await page.close();

  const worker = async () => ext.context.serviceWorkers().at(-1) ?? (await ext.context.waitForEvent("serviceworker", { timeout: 15000 }));
  const blank = await ext.context.newPage();
  await blank.goto("about:blank");

  // A first wake reads the fixture (the running worker was linked without it).
  await stopWorkers(ext, blank);
  await (await openPopup(ext)).close();
  await until(async () => (await (await worker()).evaluate(() => globalThis.tether.boot())).badge !== undefined, "the first wake with the fixture");
  // The fixture's contacts have no account on this server: that first
  // connection asks for each one's device list once (and keeps the
  // answer), as a real account's first wake after linking does. The
  // measures start once all of them are answered.
  await until(
    async () => (await (await worker()).evaluate(() => chrome.storage.session.get("snapshot"))).snapshot?.contacts.every((/** @type {any} */ c) => c.warning),
    "every contact looked up once",
    120000,
  );

  const wakeReady = [], wakeBadge = [], listPaint = [], chatSmall = [], chatBig = [], search = [];
  for (let round = 0; round < ROUNDS; round++) {
    // The badge before the stop is what the wake must show again (opening the big chat, an unread one, lowers it).
    const expectedUnread = await (await worker()).evaluate(async () => chrome.action.getBadgeText({}));
    await stopWorkers(ext, blank);
    await sleep(300);
    // Opening the popup wakes the worker; the popup paints from the
    // snapshot cache first, then from the worker.
    const popup = await openPopup(ext);
    await popup.waitForFunction(() => performance.getEntriesByName("tether:list").length > 0, null, { timeout: 20000 });
    listPaint.push(await popup.evaluate(() => performance.getEntriesByName("tether:list")[0].startTime));
    const w = await worker();
    const boot = await until(async () => {
      const b = await w.evaluate(() => globalThis.tether.boot());
      return b.ready !== undefined && b.badge !== undefined && b;
    }, "the core ready and the badge set");
    wakeReady.push(boot.ready);
    wakeBadge.push(boot.badge);
    const unread = await w.evaluate(async () => chrome.action.getBadgeText({}));
    if (unread !== expectedUnread) throw new Error(`badge "${unread}" after a wake, "${expectedUnread}" before`);

    // A typical chat, then the big one: click → its last messages painted.
    const typical = `c${String(Math.floor(chats / 2) + round).padStart(4, "0")}`;
    for (const [chat, into] of [[typical, chatSmall], ["c0001", chatBig]]) {
      const row = popup.locator(`#chat-list [data-chat="${chat}"] .chat-open`);
      await popup.evaluate(() => performance.clearMarks());
      const clicked = await popup.evaluate(() => performance.now());
      await row.click();
      await popup.waitForFunction((c) => performance.getEntriesByName(`tether:chat:${c}`).length > 0, chat, { timeout: 20000 });
      into.push((await popup.evaluate((c) => performance.getEntriesByName(`tether:chat:${c}`)[0].startTime, chat)) - clicked);
      await popup.click("#back");
    }
    await popup.close();

    // Search, in the worker (the index, then the records), a different word each round.
    const word = ["meeting", "coffee", "deploy", "birthday", "mountain", "recipe", "ticket", "weather", "garden", "release"][round % 10];
    const t = await w.evaluate(async (q) => {
      const t0 = performance.now();
      const hits = await globalThis.tether.search(q, null);
      return { ms: performance.now() - t0, hits: hits.length };
    }, word);
    if (t.hits === 0) throw new Error(`no hit for "${word}"`);
    search.push(t.ms);
  }

  const result = {
    messages,
    chats,
    history_records: history.length,
    wake_to_core_ready_ms: stats(wakeReady),
    wake_to_badge_ms: stats(wakeBadge),
    popup_open_to_chat_list_ms: stats(listPaint),
    open_chat_to_messages_ms: stats(chatSmall),
    open_big_chat_to_messages_ms: stats(chatBig),
    search_ms: stats(search),
    storage: { indexeddb_and_rest_bytes: storage.estimate.usage, chrome_storage_local_bytes: storage.local },
  };
  await mkdir(path.resolve("target/bench"), { recursive: true });
  await writeFile(path.resolve("target/bench/history.json"), JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify(result, null, 2));
} finally {
  await ext?.close();
  await server.stop();
  await alice.cleanup?.();
}
