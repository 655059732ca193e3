// @ts-check
// Files in a chat: choosing one (picker, drop, paste), its preview before
// sending, file bubbles (inline images, videos with a poster and their
// length, documents with name and size),
// progress with cancel and retry, opening and saving. The bytes live in
// IndexedDB (common/files.js): the popup writes a file there before asking
// the worker to send it, and reads received files there once the worker
// decrypted them. What a transfer does is the worker's and the core's.

import { $, h, label, t, toast } from "../dom.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { FILES, MAX_FILE_SIZE, OUTGOING, getBlob, putBlob } from "../../common/files.js";
import { canPlayVideo, describe } from "../../common/thumbnail.js";
import { audioView, clock, isAudio, openRecorder } from "./voice.js";
import { data, nameOf, redraw, ui } from "../state.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */
/** @typedef {Extract<ChatMessage["body"], { kind: "file" }>} FileBody */
/** @typedef {import("../../common/messages.js").Progress} Progress */
/** @typedef {import("../../common/messages.js").FileInfo} FileInfo */

/** Images up to this size download without a click (as the core does on arrival). */
const AUTO_DOWNLOAD_MAX = 8 * 1024 * 1024;

/** Transfers as the worker last reported them, by message id. @type {Map<string, Progress>} */
export const transfers = new Map();
/** blob: URLs of files kept in IndexedDB, by message id (null: not there). @type {Map<string, string | null>} */
const urls = new Map();
/** Downloads this popup asked for (once each). @type {Set<string>} */
const asked = new Set();
/** A document to save once its download finished. @type {Set<string>} */
const saveWhenDone = new Set();
/** A video to play once its download finished. @type {Set<string>} */
const playWhenDone = new Set();

/**
 * What this popup found in downloaded videos whose sender did not describe
 * them (the CLI makes no video thumbnails): a poster, the shape and the
 * length, by message id (null while looking, or when nothing was found).
 * @type {Map<string, { width: number, height: number, thumbnail: string, durationMs: number } | null>}
 */
const seenVideos = new Map();

/** The file chosen and not sent yet. @type {{ file: File, info: FileInfo | null, preview: string | null, error: string | null } | null} */
let draft = null;

/**
 * A size as people read it (1.2 MB), in units of 1024 as the limit is
 * stated (64 MB = 64 MiB, the protocol's default).
 * @param {number} n
 */
export function fileSize(n) {
  if (n < 1024) return t("bytes", String(n));
  const units = ["KB", "MB", "GB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

// ------------------------------------------------------------- bubbles

/**
 * A file message's content.
 * @param {ChatMessage} m
 * @param {FileBody} body
 * @returns {HTMLElement[]}
 */
export function fileView(m, body) {
  const f = body.file;
  const url = cachedUrl(m.id);
  const p = transfers.get(m.id);
  const image = f.mimeType.startsWith("image/") && (!!f.thumbnail || !!url);
  const audio = isAudio(f);
  const video = isVideo(f);
  if ((image || audio) && !url && !m.fromMe && f.size <= AUTO_DOWNLOAD_MAX && !p) ask(m.id);
  /** @type {HTMLElement[]} */
  const out = [];
  if (audio) {
    // Audio chosen as a file (no waveform) shows its name and size, a click on which saves it.
    const header = f.waveform.length ? null : h("button", { class: "audio-name", type: "button", onclick: () => (url ? save(url, f.fileName) : (saveWhenDone.add(m.id), ask(m.id, true))) },
      h("span", { class: "file-name" }, f.fileName || t("audioFile")), h("span", { class: "file-size" }, fileSize(f.size)));
    if (header) label(header, url ? t("saveFile", f.fileName || t("audioFile")) : t("downloadFile", f.fileName || t("audioFile")));
    out.push(audioView(m.id, f, url, () => ask(m.id, true), header));
  } else if (image) {
    const src = url || thumbSrc(f.thumbnail);
    const ratio = f.width && f.height ? `aspect-ratio: ${f.width} / ${f.height}` : null;
    const img = h("img", { class: "file-image", src, alt: f.fileName || t("photo"), style: ratio, draggable: "false" });
    const btn = h("button", { class: "file-image-btn", type: "button", "data-file": m.id }, img);
    label(btn, url ? t("openImage") : t("downloadImage", fileSize(f.size)));
    btn.addEventListener("click", () => (url ? openMedia(url, f.fileName, m.id, "image") : ask(m.id, true)));
    out.push(btn);
  } else if (video) {
    out.push(videoView(m, f, url, p));
  } else {
    const card = h("button", { class: "file-card", type: "button", "data-file": m.id },
      h("span", { class: "file-icon" }, icon("file")),
      h("span", { class: "file-text" },
        h("span", { class: "file-name" }, f.fileName || t("document")),
        h("span", { class: "file-size" }, fileSize(f.size), url || m.fromMe ? "" : ` · ${t("clickToDownload")}`)));
    label(card, url ? t("saveFile", f.fileName || t("document")) : t("downloadFile", f.fileName || t("document")));
    card.addEventListener("click", () => (url ? save(url, f.fileName) : (saveWhenDone.add(m.id), ask(m.id, true))));
    out.push(url && canShareFiles() ? h("div", { class: "file-row" }, card, shareButton(m.id, f.fileName, f.mimeType)) : card);
  }
  const state = transferLine(m, p);
  if (state) out.push(state);
  if (body.caption) out.push(h("p", { class: "msg-text file-caption" }, body.caption));
  return out;
}

/**
 * Whether a file shows as a video: one its sender could describe (it has a
 * thumbnail), or one this browser plays. Others (a video from the CLI in a
 * format the browser does not play) are documents to save.
 * @param {FileBody["file"]} f
 */
function isVideo(f) {
  return f.mimeType.startsWith("video/") && (!!f.thumbnail || canPlayVideo(f.mimeType));
}

/** The largest a video's poster is in a bubble, in CSS pixels. */
const POSTER_BOX = { width: 240, height: 260 };

/**
 * A video's bubble: its thumbnail (or a dark frame of its shape when the
 * sender made none, as the CLI does), a play badge, its length. A click
 * plays it full size, downloading it first (never on its own: videos are
 * large) with the progress under it.
 * @param {ChatMessage} m
 * @param {FileBody["file"]} f
 * @param {string | null} url
 * @param {Progress | undefined} p
 */
function videoView(m, f, url, p) {
  const seen = url && !f.thumbnail ? seenVideo(m.id, f) : null;
  if (seen) f = { ...f, width: seen.width, height: seen.height, thumbnail: seen.thumbnail, durationMs: f.durationMs || seen.durationMs };
  const ratio = f.width && f.height ? f.width / f.height : 16 / 9;
  const poster = f.thumbnail
    ? h("img", { class: "file-image video-poster", src: thumbSrc(f.thumbnail), alt: "", style: `aspect-ratio: ${ratio}`, draggable: "false" })
    : h("span", { class: "video-placeholder", style: `width: ${Math.round(Math.min(POSTER_BOX.width, POSTER_BOX.height * ratio))}px; aspect-ratio: ${ratio}` });
  const loading = !url && !!p && p.direction === "down" && (p.state === "waiting" || p.state === "sending");
  const corner = [f.durationMs ? clock(f.durationMs) : "", url || m.fromMe ? "" : fileSize(f.size)].filter(Boolean).join(" · ");
  const btn = h("button", { class: "file-image-btn video-btn", type: "button", "data-file": m.id, "data-state": url ? "ready" : loading ? "loading" : "remote" },
    poster,
    h("span", { class: "video-play", "aria-hidden": "true" }, icon("playFill")),
    corner ? h("span", { class: "video-corner" }, corner) : null);
  label(btn, url ? t("playVideo") : t("downloadVideo", fileSize(f.size)));
  btn.addEventListener("click", () => {
    if (url) return openMedia(url, f.fileName, m.id, "video");
    playWhenDone.add(m.id);
    ask(m.id, true);
  });
  return btn;
}

/**
 * A downloaded video's own poster, shape and length, when its sender sent
 * none: described here once (as a chosen file is), then kept for this popup.
 * @param {string} id
 * @param {FileBody["file"]} f
 */
function seenVideo(id, f) {
  if (seenVideos.has(id)) return seenVideos.get(id) ?? null;
  seenVideos.set(id, null);
  getBlob(FILES, id)
    .then((blob) => blob && describe(new Blob([blob], { type: f.mimeType }), f.fileName))
    .then((info) => {
      if (!info?.thumbnail) return;
      seenVideos.set(id, { width: info.width ?? 0, height: info.height ?? 0, thumbnail: info.thumbnail, durationMs: info.durationMs ?? 0 });
      redraw();
    })
    .catch(() => {}); // not a video this browser decodes: the dark frame stays
  return null;
}

/**
 * Progress, cancel, or why it was not sent with "Retry".
 * @param {ChatMessage} m
 * @param {Progress | undefined} p
 */
function transferLine(m, p) {
  const upload = data.snap?.uploads?.find((u) => u.id === m.id);
  if (m.fromMe && m.status === "failed") {
    const reason = (p?.state === "failed" && p.reason) || (upload?.reason && upload.reason !== "cancelled" ? upload.reason : "") || "";
    const line = h("div", { class: "file-failed", role: "alert" },
      h("span", { class: "file-failed-text" }, icon("alert"), t("notSent"), reason ? ` · ${reason}` : ""));
    if (upload) {
      line.append(h("button", { class: "btn link file-retry", type: "button", onclick: () => post({ kind: "retryUpload", id: m.id }) }, t("retry")));
    }
    return line;
  }
  if (p && p.state === "failed") return h("div", { class: "file-failed", role: "alert" }, icon("alert"), p.reason || t("downloadFailed"));
  const sending = m.fromMe && m.status === "pending" && upload;
  if (!sending && !(p && p.state !== "done")) return null;
  const frac = p && p.total ? Math.min(1, p.done / p.total) : 0;
  const bar = h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(frac * 100)) },
    h("div", { class: "progress-fill", style: `width: ${(frac * 100).toFixed(1)}%` }));
  const line = h("div", { class: "file-progress", "data-progress": m.id }, bar);
  if (sending) {
    const cancel = h("button", { class: "icon-btn small file-cancel", type: "button", onclick: () => post({ kind: "cancelUpload", id: m.id }) }, icon("close"));
    label(cancel, t("cancel"));
    line.append(cancel);
  }
  return line;
}

/**
 * A data: URL of a picture carried in a message (a thumbnail, a link
 * preview's image), or null for none.
 * @param {string} b64
 */
export function thumbSrc(b64) {
  if (!b64) return null;
  return `data:${b64.startsWith("iVBOR") ? "image/png" : "image/jpeg"};base64,${b64}`;
}

/**
 * The blob: URL of a kept file, or null while it loads or is not there.
 * @param {string} id
 */
function cachedUrl(id) {
  if (urls.has(id)) return urls.get(id) ?? null;
  urls.set(id, null);
  getBlob(FILES, id)
    .then((blob) => {
      if (!blob) {
        urls.delete(id); // not there yet: look again on the next paint
        return;
      }
      urls.set(id, URL.createObjectURL(blob));
      redraw();
    })
    .catch(() => urls.delete(id));
  return null;
}

/**
 * Asks the worker for a file (once per popup unless `again`).
 * @param {string} id
 * @param {boolean} [again]
 */
function ask(id, again = false) {
  if (asked.has(id) && !again) return;
  asked.add(id);
  post({ kind: "downloadFile", id });
}

/**
 * The worker reports a transfer.
 * @param {Progress} p
 */
export function onProgress(p) {
  const before = transfers.get(p.id);
  transfers.set(p.id, p);
  if (p.state === "done") {
    transfers.delete(p.id);
    urls.delete(p.id);
    if (saveWhenDone.delete(p.id)) {
      getBlob(FILES, p.id).then((blob) => {
        const m = data.history?.messages.find((x) => x.id === p.id);
        if (blob && m?.body.kind === "file") save(URL.createObjectURL(blob), m.body.file.fileName);
      });
    }
    if (playWhenDone.delete(p.id)) {
      getBlob(FILES, p.id).then((blob) => {
        const m = data.history?.messages.find((x) => x.id === p.id);
        if (!blob || m?.body.kind !== "file" || ui.screen !== "chat") return;
        const url = URL.createObjectURL(blob);
        urls.set(p.id, url);
        redraw();
        openMedia(url, m.body.file.fileName, p.id, "video");
      });
    }
  }
  // Only the bar moves while bytes flow; a new state repaints the chat.
  const fill = /** @type {HTMLElement | null} */ (document.querySelector(`[data-progress="${p.id}"] .progress-fill`));
  if (fill && before?.state === p.state && p.state === "sending" && p.total) {
    fill.style.width = `${Math.min(100, (100 * p.done) / p.total).toFixed(1)}%`;
    fill.parentElement?.setAttribute("aria-valuenow", String(Math.round((100 * p.done) / p.total)));
    return;
  }
  if (ui.screen === "chat") redraw();
}

/**
 * A photo full size over the chat, or a video playing there with its
 * controls; Save (and Share where the system has it) below. A click beside
 * it (or on the photo) or Escape closes it.
 * @param {string} url
 * @param {string} name
 * @param {string | undefined} id its message (to share the file)
 * @param {"image" | "video"} kind
 */
function openMedia(url, name, id, kind) {
  document.querySelector(".image-overlay")?.remove();
  const title = name || t(kind === "video" ? "video" : "photo");
  /** @type {HTMLElement} */
  let media;
  if (kind === "video") {
    const video = h("video", { src: url, controls: true, autoplay: true, playsinline: true, class: "overlay-video" });
    video.addEventListener("error", () => video.replaceWith(h("p", { class: "overlay-note", role: "alert" }, t("videoNotPlayable"))), { once: true });
    media = video;
  } else {
    media = h("img", { src: url, alt: title });
  }
  const fallback = kind === "video" ? "video" : "image";
  const overlay = h("div", { class: "image-overlay", role: "dialog", "aria-modal": "true", tabindex: "-1", "data-kind": kind },
    media,
    h("div", { class: "image-actions" },
      h("a", { class: "btn image-save", href: url, download: name || fallback }, t("save")),
      id && canShareFiles() ? shareButton(id, name || fallback, "", "btn image-share") : null));
  label(overlay, title);
  const close = () => {
    overlay.querySelector("video")?.pause();
    overlay.remove();
  };
  overlay.addEventListener("click", (e) => e.target === overlay || e.target instanceof HTMLImageElement ? close() : undefined);
  overlay.addEventListener("keydown", (e) => e.key === "Escape" && (e.stopPropagation(), close()));
  document.body.append(overlay);
  overlay.focus();
}

/**
 * Saves a file through an anchor download: the browser's own save flow,
 * with no "downloads" permission to ask for.
 * @param {string} url
 * @param {string} name
 */
function save(url, name) {
  const a = h("a", { href: url, download: name || "file", hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

/** Whether this browser shares files with other apps (phones: the share sheet). */
function canShareFiles() {
  try {
    return typeof navigator.canShare === "function" && navigator.canShare({ files: [new File([""], "x.txt", { type: "text/plain" })] });
  } catch {
    return false;
  }
}

/**
 * A button that hands a kept file to the system's share sheet (on a phone:
 * save to Files, send with another app).
 * @param {string} id the file's message
 * @param {string} name
 * @param {string} type
 * @param {string} [cls]
 */
function shareButton(id, name, type, cls = "icon-btn small file-share") {
  const btn = h("button", { class: cls, type: "button" }, cls.includes("icon-btn") ? icon("share") : t("shareFile"));
  label(btn, t("shareFile"));
  btn.addEventListener("click", async (e) => {
    e.stopPropagation();
    const blob = await getBlob(FILES, id);
    if (!blob) return;
    const file = new File([blob], name || "file", { type: type || blob.type });
    await navigator.share({ files: [file] }).catch(() => {}); // dismissed: nothing to say
  });
  return btn;
}

// ------------------------------------------------------- choosing a file

/** The chosen file, for the composer (Send is enabled with one). */
export function hasDraft() {
  return !!draft && !draft.error && !!draft.info;
}

/**
 * A file was chosen (picker, drop, paste): check it, describe it, preview it.
 * @param {File | null | undefined} file
 */
export async function chooseFile(file) {
  if (!file || !ui.chat) return;
  if (file.size > MAX_FILE_SIZE) {
    draft = { file, info: null, preview: null, error: t("fileTooLarge", file.name || t("document"), fileSize(file.size), fileSize(MAX_FILE_SIZE)) };
    renderDraft();
    return;
  }
  draft = { file, info: null, preview: null, error: null };
  renderDraft();
  const info = await describe(file, file.name);
  if (draft?.file !== file) return;
  draft.info = info;
  draft.preview = thumbSrc(info.thumbnail || "");
  renderDraft();
}

/** Drops the chosen file. */
export function clearDraft() {
  draft = null;
  renderDraft();
}

/** The preview above the composer. */
export function renderDraft() {
  const bar = document.getElementById("file-draft");
  if (!bar) return;
  bar.hidden = !draft;
  const send = /** @type {HTMLButtonElement | null} */ (document.getElementById("send"));
  if (!draft) {
    bar.replaceChildren();
    if (send) send.disabled = !(/** @type {HTMLTextAreaElement} */ ($("composer")).value.trim());
    return;
  }
  const f = draft.file;
  const close = h("button", { class: "icon-btn small", type: "button", onclick: clearDraft }, icon("close"));
  label(close, t("cancel"));
  const thumb = draft.preview
    ? h("img", { class: "draft-thumb", src: draft.preview, alt: "" })
    : h("span", { class: "file-icon" }, icon(f.type.startsWith("image/") ? "image" : f.type.startsWith("video/") ? "video" : "file"));
  bar.classList.toggle("error", !!draft.error);
  bar.replaceChildren(thumb,
    h("span", { class: "file-text" },
      h("span", { class: "file-name" }, f.name || t("document")),
      draft.error ? h("span", { class: "file-error", role: "alert" }, draft.error) : h("span", { class: "file-size" }, fileSize(f.size), " · ", t("captionHint"))),
    close);
  if (send) send.disabled = !hasDraft();
}

/**
 * Sends the chosen file with the composer's text as its caption: the file
 * goes to IndexedDB first, then the worker makes the message.
 * @param {string} caption
 */
export async function sendDraft(caption) {
  if (!draft || !draft.info || draft.error || !ui.chat) return false;
  const { file, info } = draft;
  const chat = ui.chat;
  draft = null;
  renderDraft();
  const key = `pending-${crypto.randomUUID()}`;
  try {
    await putBlob(OUTGOING, key, file);
  } catch (err) {
    toast(t("fileNotKept", String(err instanceof Error ? err.message : err)), true);
    return false;
  }
  post({ kind: "sendFile", chat, key, info, caption });
  return true;
}

/** Picker, drop and paste (where the page has them: the web app has none yet). */
export function wireFiles() {
  const input = /** @type {HTMLInputElement | null} */ (document.getElementById("file-input"));
  const attach = document.getElementById("attach");
  const record = document.getElementById("record");
  // The recorder is a window of the extension's (screens/voice.js): none in the web app.
  const windows = /** @type {any} */ (globalThis).chrome?.windows;
  if (record) record.hidden = !windows;
  record?.addEventListener("click", () => ui.chat && openRecorder(ui.chat, nameOf(ui.chat)));
  if (!input || !attach) return;
  attach.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    chooseFile(input.files?.[0]);
    input.value = "";
  });
  document.addEventListener("dragover", (e) => {
    if (ui.screen !== "chat" || !e.dataTransfer?.types.includes("Files")) return;
    e.preventDefault();
    document.body.classList.add("dropping");
  });
  document.addEventListener("dragleave", (e) => {
    if (!e.relatedTarget) document.body.classList.remove("dropping");
  });
  document.addEventListener("drop", (e) => {
    document.body.classList.remove("dropping");
    if (ui.screen !== "chat" || !e.dataTransfer?.files.length) return;
    e.preventDefault();
    chooseFile(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    if (ui.screen !== "chat") return;
    const file = [...(e.clipboardData?.files || [])][0];
    if (!file) return; // text pastes as text
    e.preventDefault();
    chooseFile(file);
  });
}
