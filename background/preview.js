// @ts-check
// Link previews made by the sender (issue 13). When the user shares the
// page of a tab (the context menu on a page or a selection, the keyboard
// command, "share this page" in the popup), the worker reads the page's own
// description of itself: og:title / twitter:title / the document title,
// og:description / twitter:description / the meta description, og:site_name
// (else the host) and the og:image / twitter:image address. It fetches that
// image and makes a JPEG of at most 320 × 320 and PREVIEW_IMAGE_MAX bytes;
// the preview travels inside the encrypted message, so recipients show it
// and never fetch the page or the image (docs/security.md).
//
// Only on the user's gesture: those gestures give the extension `activeTab`
// on that tab (host access to its origin until it navigates elsewhere); on
// any other page `executeScript` fails, and so it does on pages no script
// may read (chrome://, the Web Store, the PDF viewer). The image is fetched
// without cookies or referrer; one from another origin is read only if that
// site serves it to any origin (CORS). If it cannot be read, the top of the
// visible tab stands in for it (`captureVisibleTab`, which activeTab also
// allows), only when the page named an image, so a page that offers no
// picture of itself (an inbox, a dashboard) is never photographed.
//
// Bounded: everything within PREVIEW_BUDGET_MS (the image's share of it
// abandoned first: the texts still go). A page that cannot be read, a
// timeout or any failure gives no preview, never a failed or late share.

import { thumbnail } from "../common/thumbnail.js";

/** @typedef {import("../wasm/tether_core.js").LinkPreview} LinkPreview */
/** What a share sends of the page: its own title (may be "") and the preview. @typedef {{ title: string, preview: LinkPreview }} PagePreview */
/** What the page says about itself (read in the page, see `readPage`). @typedef {{ url: string, title: string, description: string, siteName: string, image: string }} PageMeta */

/** The most a preview may hold a share up, in ms. */
export const PREVIEW_BUDGET_MS = 1500;
/** The most bytes of the preview's JPEG: the engine's `PREVIEW_IMAGE_MAX` (crates/client/src/model.rs). */
const PREVIEW_IMAGE_MAX = 48 * 1024;
/** The largest image the worker fetches to make the preview's picture. */
const IMAGE_FETCH_MAX = 8 * 1024 * 1024;
/** A screenshot's crop: the top of the tab in the shape of an og:image (1.91 : 1). */
const SHOT_RATIO = 1.91;

/**
 * The preview of the page shown in `tabId`, or null when there is none:
 * not a web page, no access (no gesture on that tab, a page no script may
 * read), the tab no longer shows `url`, or out of time.
 * @param {number | undefined} tabId the tab the user acted on
 * @param {string} url the address being shared (the tab must still show it)
 * @param {number} [budgetMs]
 * @returns {Promise<PagePreview | null>}
 */
export async function pagePreview(tabId, url, budgetMs = PREVIEW_BUDGET_MS) {
  if (tabId === undefined || tabId < 0 || !/^https?:\/\//i.test(url)) return null;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), budgetMs);
  try {
    const meta = await bounded(readPage(tabId), stop.signal);
    if (!meta || !samePage(meta.url, url)) return null;
    const image = meta.image ? await bounded(picture(meta.image, tabId, url, stop.signal), stop.signal).catch(() => null) : null;
    return { title: meta.title, preview: { description: meta.description, siteName: meta.siteName, image: image || "" } };
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `readMeta` in the tab's top frame (the extension's isolated world,
 * at once rather than after the page finished loading).
 * @param {number} tabId
 * @returns {Promise<PageMeta | null>}
 */
async function readPage(tabId) {
  const [first] = await chrome.scripting.executeScript({ target: { tabId }, func: readMeta, injectImmediately: true });
  const m = /** @type {Partial<PageMeta> | undefined} */ (first?.result);
  if (!m || typeof m.url !== "string") return null;
  return { url: m.url, title: text(m.title, 300), description: text(m.description, 300), siteName: text(m.siteName, 80), image: typeof m.image === "string" ? m.image : "" };
}

/**
 * Injected into the page: reads its meta tags. Self-contained (it is
 * serialised into the page and sees nothing of this module).
 * @returns {PageMeta}
 */
function readMeta() {
  /** @param {string[]} names */
  const meta = (...names) => {
    for (const name of names) {
      const v = document.querySelector(`meta[property="${name}" i], meta[name="${name}" i]`)?.getAttribute("content")?.trim();
      if (v) return v.slice(0, 2048);
    }
    return "";
  };
  let image = meta("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src");
  try {
    image = image ? new URL(image, document.baseURI).href : "";
  } catch {
    image = "";
  }
  return {
    url: location.href,
    title: meta("og:title", "twitter:title") || document.title,
    description: meta("og:description", "twitter:description", "description"),
    siteName: meta("og:site_name") || location.hostname,
    image: /^(https?:|data:image\/)/i.test(image) ? image : "",
  };
}

/**
 * The preview's picture (base64 JPEG): the page's image, else the top of
 * the visible tab; "" if neither.
 * @param {string} imageUrl
 * @param {number} tabId
 * @param {string} pageUrl
 * @param {AbortSignal} signal
 */
async function picture(imageUrl, tabId, pageUrl, signal) {
  try {
    const bmp = await createImageBitmap(await fetchImage(imageUrl, signal));
    try {
      return await thumbnail(bmp, PREVIEW_IMAGE_MAX);
    } finally {
      bmp.close();
    }
  } catch {
    return signal.aborted ? "" : screenshot(tabId, pageUrl);
  }
}

/**
 * The image's bytes: no cookies, no referrer, only an image, at most IMAGE_FETCH_MAX.
 * @param {string} url
 * @param {AbortSignal} signal
 */
async function fetchImage(url, signal) {
  const resp = await fetch(url, { credentials: "omit", referrerPolicy: "no-referrer", signal });
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  if (Number(resp.headers.get("Content-Length") || 0) > IMAGE_FETCH_MAX) throw new Error("image too large");
  const blob = await resp.blob();
  if (blob.size > IMAGE_FETCH_MAX || !blob.type.startsWith("image/")) throw new Error("not an image");
  return blob;
}

/**
 * The top of the tab as it is on screen, if it is still the visible tab of
 * its window and still shows the shared page.
 * @param {number} tabId
 * @param {string} pageUrl
 */
async function screenshot(tabId, pageUrl) {
  const tab = await chrome.tabs.get(tabId);
  if (!tab.active || !samePage(tab.url || "", pageUrl)) return "";
  const shot = await chrome.tabs.captureVisibleTab(tab.windowId, { format: "jpeg", quality: 85 });
  const full = await createImageBitmap(await (await fetch(shot)).blob());
  const top = await createImageBitmap(full, 0, 0, full.width, Math.min(full.height, Math.round(full.width / SHOT_RATIO)));
  full.close();
  try {
    return await thumbnail(top, PREVIEW_IMAGE_MAX);
  } finally {
    top.close();
  }
}

/**
 * The promise's value, or null once `signal` aborts.
 * @template T
 * @param {Promise<T>} work
 * @param {AbortSignal} signal
 * @returns {Promise<T | null>}
 */
function bounded(work, signal) {
  work.catch(() => {}); // after the deadline, its end is of no interest
  if (signal.aborted) return Promise.resolve(null);
  /** @type {Promise<null>} */
  const late = new Promise((resolve) => signal.addEventListener("abort", () => resolve(null), { once: true }));
  return Promise.race([work, late]);
}

/**
 * Whether two addresses are the same document (the fragment aside).
 * @param {string} a
 * @param {string} b
 */
function samePage(a, b) {
  return a.split("#")[0] === b.split("#")[0];
}

/**
 * A page's text on one line, at most `max` characters.
 * @param {unknown} s
 * @param {number} max
 */
function text(s, max) {
  return typeof s === "string" ? s.replace(/\s+/g, " ").trim().slice(0, max) : "";
}
