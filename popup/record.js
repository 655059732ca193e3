// @ts-check
// The voice recorder: a small extension window that the popup's mic button
// opens (chrome.windows.create, type "popup") for one chat. It asks for the
// microphone, records with MediaRecorder (Opus in Ogg where the browser
// records it, else in WebM: Firefox records both, Chromium WebM), shows a
// level meter, a live waveform and a timer, and on Send computes the
// duration and a 64-sample waveform from the recording itself
// (decodeAudioData), puts the file in IndexedDB and asks the worker to send
// it like any file (background/pages.js → transfer.js).
//
// Why a window and not the popup or an offscreen document: the popup
// closes as soon as it loses focus (the microphone prompt alone takes it),
// which would end the recording. An offscreen document is Chrome-only
// (Firefox has no offscreen API), cannot show a meter or Stop/Send, and
// cannot ask for the microphone: getUserMedia there only works once the
// extension already holds the permission. A window is one page that asks,
// records, shows and sends, the same way in Chrome and Firefox.

import { OUTGOING, MAX_FILE_SIZE, deleteBlob, putBlob } from "../common/files.js";
import { label, t } from "./dom.js";

/** @typedef {import("../background/pages.js").PageRequest} PageRequest */
/** @typedef {import("../background/pages.js").PageReply} PageReply */

/** Longest recording: then it stops by itself (about 4 MB of Opus). */
const MAX_MS = 15 * 60_000;
/** Samples in the waveform sent with the note (the protocol allows 256). */
const BARS = 64;
/** Containers in order of preference: Ogg plays everywhere; Chromium records WebM only. */
const TYPES = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/webm", "audio/ogg"];
/** Bars of the live waveform kept on screen. */
const LIVE_BARS = 80;

const params = new URLSearchParams(location.search);
const chat = params.get("chat") || "";

/** @type {MediaStream | null} */
let stream = null;
/** @type {MediaRecorder | null} */
let recorder = null;
/** @type {AudioContext | null} */
let audio = null;
/** @type {Blob[]} */
let chunks = [];
/** The recording, once stopped. @type {Blob | null} */
let recording = null;
let startedAt = 0;
let elapsed = 0;
let tick = 0;
/** Peak level of each 100 ms while recording (0–1): the waveform if the file cannot be decoded. @type {number[]} */
const levels = [];
let sending = false;

/** @param {string} id */
const el = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const btn = (id) => /** @type {HTMLButtonElement} */ (document.getElementById(id));

/** m:ss @param {number} ms */
function clock(ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** @param {string} text @param {boolean} [error] */
function status(text, error = false) {
  const s = el("rec-status");
  s.textContent = text;
  s.classList.toggle("error", error);
}

function localise() {
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(/** @type {HTMLElement} */ (e).dataset.i18n ?? "");
  for (const e of document.querySelectorAll("[data-i18n-label]")) label(e, t(/** @type {HTMLElement} */ (e).dataset.i18nLabel ?? ""));
  document.title = t("voiceTitle");
}

/** Asks for the microphone and starts recording. */
async function start() {
  el("rec-title").textContent = t("voiceTo", params.get("name") || chat);
  if (!chat) return status(t("voiceNoChat"), true);
  if (typeof MediaRecorder === "undefined") return status(t("voiceUnsupported"), true);
  status(t("voiceAsking"));
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
  } catch (err) {
    const name = err instanceof DOMException ? err.name : "";
    if (name === "NotAllowedError" || name === "SecurityError") status(t("voiceRefused"), true);
    else if (name === "NotFoundError" || name === "OverconstrainedError") status(t("voiceNoMic"), true);
    else status(t("voiceMicError", err instanceof Error ? err.message : String(err)), true);
    el("rec-cancel").textContent = t("close");
    return;
  }
  const mimeType = TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
  recorder = new MediaRecorder(stream, { mimeType, audioBitsPerSecond: 32000 });
  recorder.addEventListener("dataavailable", (e) => e.data.size && chunks.push(e.data));
  recorder.start(1000);
  startedAt = performance.now();
  meter(stream);
  document.body.classList.add("recording");
  status(t("voiceRecording"));
  btn("rec-stop").disabled = false;
  btn("rec-send").disabled = false;
}

/**
 * The level meter and live waveform: an AnalyserNode read every 50 ms
 * (timers, not animation frames, so it runs in a window without focus).
 * @param {MediaStream} s
 */
function meter(s) {
  audio = new AudioContext();
  const analyser = audio.createAnalyser();
  analyser.fftSize = 1024;
  audio.createMediaStreamSource(s).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const wave = el("rec-wave");
  let peak = 0;
  let n = 0;
  tick = window.setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    const rms = Math.sqrt(sum / buf.length);
    // -54 dB to 0 dB onto 0–1: speech sits in the middle of the bar.
    const level = Math.max(0, Math.min(1, (20 * Math.log10(rms || 1e-9) + 54) / 54));
    el("rec-level").style.width = `${(level * 100).toFixed(0)}%`;
    el("rec-meter").setAttribute("aria-valuenow", String(Math.round(level * 100)));
    peak = Math.max(peak, level);
    if (++n % 2 === 0) {
      levels.push(peak);
      const bar = document.createElement("span");
      bar.style.height = `${Math.max(2, Math.round(peak * 40))}px`;
      wave.append(bar);
      while (wave.childElementCount > LIVE_BARS) wave.firstElementChild?.remove();
      peak = 0;
    }
    elapsed = performance.now() - startedAt;
    el("rec-time").textContent = clock(elapsed);
    if (elapsed >= MAX_MS) stop();
  }, 50);
}

/** Stops recording; resolves with the recording. @returns {Promise<Blob | null>} */
async function stop() {
  if (recording) return recording;
  const r = recorder;
  if (!r) return null;
  clearInterval(tick);
  elapsed = performance.now() - startedAt;
  const done = new Promise((resolve) => r.addEventListener("stop", resolve, { once: true }));
  if (r.state !== "inactive") r.stop();
  await done;
  stream?.getTracks().forEach((tr) => tr.stop());
  document.body.classList.remove("recording");
  btn("rec-stop").disabled = true;
  el("rec-level").style.width = "0";
  recording = new Blob(chunks, { type: r.mimeType.split(";")[0] || "audio/webm" });
  status(t("voiceRecorded", clock(elapsed)));
  return recording;
}

/**
 * The duration and waveform of a recording: decoded, cut into BARS
 * slices, each slice's RMS scaled so the loudest is 255. If the browser
 * cannot decode it, the levels seen while recording stand in.
 * @param {Blob} blob
 * @returns {Promise<{ durationMs: number, waveform: number[] }>}
 */
async function analyse(blob) {
  try {
    const ctx = audio && audio.state !== "closed" ? audio : new AudioContext();
    const buffer = await ctx.decodeAudioData(await blob.arrayBuffer());
    const data = buffer.getChannelData(0);
    const per = Math.max(1, Math.floor(data.length / BARS));
    const rms = [];
    for (let i = 0; i < BARS && i * per < data.length; i++) {
      let sum = 0;
      const end = Math.min(data.length, (i + 1) * per);
      for (let j = i * per; j < end; j++) sum += data[j] * data[j];
      rms.push(Math.sqrt(sum / (end - i * per)));
    }
    return { durationMs: Math.round(buffer.duration * 1000), waveform: scale(rms) };
  } catch {
    const step = levels.length / BARS;
    const picked = levels.length <= BARS ? levels : Array.from({ length: BARS }, (_, i) => Math.max(...levels.slice(Math.floor(i * step), Math.floor((i + 1) * step) || 1)));
    return { durationMs: Math.round(elapsed), waveform: scale(picked) };
  }
}

/** 0–255, the loudest at 255 (all 0 for silence). @param {number[]} values */
function scale(values) {
  const max = Math.max(0, ...values);
  return values.map((v) => (max > 0 ? Math.round((255 * v) / max) : 0));
}

/** Stops (if recording), then hands the note to the worker and closes. */
async function send() {
  if (sending) return;
  sending = true;
  btn("rec-send").disabled = true;
  btn("rec-stop").disabled = true;
  const blob = await stop();
  if (!blob || !blob.size) {
    sending = false;
    return status(t("voiceEmpty"), true);
  }
  if (blob.size > MAX_FILE_SIZE) return status(t("voiceTooLong"), true); // Send stays off: nothing to retry
  status(t("voiceSending"));
  const { durationMs, waveform } = await analyse(blob);
  const ext = blob.type === "audio/ogg" ? "ogg" : "webm";
  const stamp = new Date().toISOString().slice(0, 19).replace("T", " ").replace(/:/g, ".");
  const key = `pending-${crypto.randomUUID()}`;
  try {
    await putBlob(OUTGOING, key, blob);
    /** @type {PageRequest} */
    const req = {
      kind: "sendFile",
      chat,
      key,
      info: { fileName: `Voice message ${stamp}.${ext}`, mimeType: blob.type, size: blob.size, width: 0, height: 0, thumbnail: "", durationMs, waveform },
    };
    /** @type {PageReply} */
    const reply = await chrome.runtime.sendMessage(req);
    if (!reply?.ok) throw new Error(reply?.error || t("errorWorker"));
  } catch (err) {
    await deleteBlob(OUTGOING, key).catch(() => {});
    sending = false;
    btn("rec-send").disabled = false;
    return status(t("voiceNotSent", err instanceof Error ? err.message : String(err)), true);
  }
  status(t("voiceSent"));
  await audio?.close().catch(() => {});
  setTimeout(() => window.close(), 400);
}

function cancel() {
  clearInterval(tick);
  if (recorder && recorder.state !== "inactive") recorder.stop();
  stream?.getTracks().forEach((tr) => tr.stop());
  window.close();
}

localise();
btn("rec-cancel").addEventListener("click", cancel);
btn("rec-stop").addEventListener("click", () => void stop());
btn("rec-send").addEventListener("click", () => void send());
document.addEventListener("keydown", (e) => e.key === "Escape" && cancel());
start();
