// @ts-check
// Right-click "Send to Tether" on an image sends the image itself, not
// only its URL: the worker fetches the bytes, makes the thumbnail and
// dimensions (createImageBitmap, OffscreenCanvas) and sends a photo like
// one chosen in the popup (transfer.js). Reading another site's image
// needs a host permission: the manifest lists `<all_urls>` under
// `optional_host_permissions` and asks only for the image's origin
// (`https://host/*`), the first time an image from it is sent, unless the
// site serves its images to any origin (CORS), which needs no permission.
//
// How it asks: `chrome.permissions.request` needs a user gesture, which a
// menu click hands to the worker only until its first `await` (the core
// must be up first) and which Firefox requires synchronously. So the
// worker opens a small window (popup/grant.html) with the question; its
// button is the gesture, and it reports the answer here (pages.js). The
// share waits in chrome.storage.session meanwhile. Refused, or a fetch
// that fails (network, not an image, over 64 MB): the URL goes as a link,
// as before, and the user is told so.

import { MAX_FILE_SIZE, OUTGOING, putBlob } from "../common/files.js";
import { describe } from "../common/thumbnail.js";
import { sendFile } from "./transfer.js";

/** @typedef {import("../wasm/tether_core.js").Core} Core */
/** An image to send: to which chat, its URL, the page's title. @typedef {{ chat: string, url: string, title: string }} ImageShare */
/** What happened: the image, or its link and why. @typedef {{ sent: "image", id: string } | { sent: "link", reason: string } | { sent: "asking" }} ImageOutcome */

/** Shares waiting for the answer in grant.html (chrome.storage.session), by request id. */
const ASK_PREFIX = "imageAsk:";
/** How long a share waits for that answer. */
const ASK_TTL_MS = 5 * 60_000;

/**
 * The host permission pattern that lets the worker read `url`, or null
 * for URLs no permission opens (blob:, file:, …).
 * @param {string} url
 */
export function originPattern(url) {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? `${u.protocol}//${u.hostname}/*` : null;
  } catch {
    return null;
  }
}

/**
 * Sends the image of a right-click: its bytes if the extension may read
 * its origin (a data: URL needs nothing), else asks in a window first.
 * @param {Core} core
 * @param {ImageShare} share
 * @returns {Promise<ImageOutcome>}
 */
export async function sendImage(core, share) {
  if (share.url.startsWith("data:image/")) return sendBytesOrLink(core, share);
  const origin = originPattern(share.url);
  if (!origin) return sendLink(core, share, msg("imageNotReadable"), true);
  if (await chrome.permissions.contains({ origins: [origin] })) return sendBytesOrLink(core, share);
  // A site that shares its images with every origin (CORS, as many CDNs
  // do) needs no permission: try that first, without cookies.
  const open = await fetchImage(share.url, false).catch(() => null);
  if (open) return sendBlob(core, share, open);
  const id = crypto.randomUUID();
  await chrome.storage.session.set({ [ASK_PREFIX + id]: { ...share, at: Date.now() } });
  const url = chrome.runtime.getURL(`popup/grant.html?id=${id}&origin=${encodeURIComponent(origin)}`);
  await chrome.windows.create({ url, type: "popup", width: 420, height: 300 });
  return { sent: "asking" };
}

/**
 * grant.html's answer: the image if the permission was granted, the link if not.
 * @param {Core} core
 * @param {string} id
 * @param {boolean} granted
 * @returns {Promise<ImageOutcome>}
 */
export async function imageAnswer(core, id, granted) {
  const key = ASK_PREFIX + id;
  const { [key]: stored } = await chrome.storage.session.get(key);
  await chrome.storage.session.remove(key);
  const share = /** @type {(ImageShare & { at: number }) | undefined} */ (stored);
  if (!share || Date.now() - share.at > ASK_TTL_MS) throw new Error(msg("shareExpired") || "That share expired; share it again");
  if (!granted) return sendLink(core, share, msg("imageNotAllowed"), false);
  return sendBytesOrLink(core, share);
}

/**
 * @param {Core} core
 * @param {ImageShare} share
 * @returns {Promise<ImageOutcome>}
 */
async function sendBytesOrLink(core, share) {
  /** @type {Blob} */
  let image;
  try {
    image = await fetchImage(share.url, true);
  } catch (err) {
    return sendLink(core, share, err instanceof Error ? err.message : String(err), true);
  }
  return sendBlob(core, share, image);
}

/**
 * Sends fetched image bytes as a photo (the link if they do not decode).
 * @param {Core} core
 * @param {ImageShare} share
 * @param {Blob} image
 * @returns {Promise<ImageOutcome>}
 */
async function sendBlob(core, share, image) {
  /** @type {import("../wasm/tether_core.js").FileInfo} */
  let info;
  try {
    info = await describe(image, fileName(share.url, image.type));
    if (!info.width) throw new Error(msg("imageNotDecoded"));
  } catch (err) {
    return sendLink(core, share, err instanceof Error ? err.message : String(err), true);
  }
  const key = `pending-${crypto.randomUUID()}`;
  await putBlob(OUTGOING, key, image);
  const id = await sendFile(core, share.chat, key, info, "");
  return { sent: "image", id };
}

/**
 * The fallback: the image's URL as a link, as before this existed; the
 * user is told (a notification when no window of ours is showing).
 * @param {Core} core
 * @param {ImageShare} share
 * @param {string} reason
 * @param {boolean} notify
 * @returns {Promise<ImageOutcome>}
 */
async function sendLink(core, share, reason, notify) {
  await core.sendLink(share.chat, share.url, share.title, "", null);
  if (notify) {
    await chrome.notifications.create(`image:${Date.now()}`, {
      type: "basic",
      iconUrl: chrome.runtime.getURL("icons/icon-128.png"),
      title: msg("imageSentAsLink"),
      message: reason,
      priority: 0,
    });
  }
  return { sent: "link", reason };
}

/**
 * The image's bytes, refused if not an image or over the file limit.
 * @param {string} url
 * @param {boolean} allowed the extension holds the site's permission: cookies
 *   as the page sent them (an image behind a login is the one the user saw)
 * @returns {Promise<Blob>}
 */
async function fetchImage(url, allowed) {
  const resp = await fetch(url, { credentials: allowed ? "include" : "omit" });
  if (!resp.ok) throw new Error(msg("imageFetchFailed", `HTTP ${resp.status}`));
  const length = Number(resp.headers.get("Content-Length") || 0);
  if (length > MAX_FILE_SIZE) throw new Error(msg("imageTooLarge"));
  const blob = await resp.blob();
  if (blob.size > MAX_FILE_SIZE) throw new Error(msg("imageTooLarge"));
  if (!blob.type.startsWith("image/")) throw new Error(msg("imageNotAnImage"));
  return blob;
}

/**
 * A file name for the image: the URL's last path segment, with an
 * extension from its type if it has none.
 * @param {string} url
 * @param {string} type
 */
function fileName(url, type) {
  let base = "";
  try {
    const u = new URL(url);
    if (u.protocol !== "data:") base = decodeURIComponent(u.pathname.split("/").pop() || "");
  } catch {
    // a name is only a suggestion
  }
  base = base.replace(/[\\/\u0000-\u001f\u007f]/g, "_").trim().slice(0, 120);
  if (!base) base = "image";
  const ext = (type.split("/")[1] || "").replace("jpeg", "jpg").replace(/\+.*$/, "");
  return /\.[a-z0-9]{2,5}$/i.test(base) || !ext ? base : `${base}.${ext}`;
}

/** @param {string} key @param {string[]} subs */
function msg(key, ...subs) {
  return chrome.i18n.getMessage(key, subs) || key;
}
