// @ts-check
// Voice notes and other audio in a chat (issue 11): a play/pause button,
// the waveform as bars that fill as it plays (click or drag on it to move,
// arrow keys too: it is a slider), and the time: the length while it
// rests, the position while it plays. It plays the decrypted file from the
// cache (files.js hands over its blob: URL); one note plays at a time.
//
// A voice note is an `audio/*` file with a waveform, as the engine's
// "🎤 Voice message 0:12" preview has it. Audio without a waveform (the
// CLI sends none, e.g. `tether send-file bob talk.ogg`) gets the same
// player over a plain track, under its file name and size: it is a file
// someone chose, so its name matters, and it plays just the same.

import { h, label, t } from "../dom.js";
import { icon } from "../icons.js";

/** A file message's descriptor. @typedef {Extract<import("../state.js").ChatMessage["body"], { kind: "file" }>["file"]} FileInfo */

/** Bars drawn at most (a longer waveform is folded by maximum). */
const MAX_BARS = 48;

/** The note playing or paused mid-way, if any. @type {{ id: string, audio: HTMLAudioElement, durationMs: number } | null} */
let player = null;
/** A note whose play was pressed before its file was here. */
let playWhenReady = "";
let frame = 0;

/** Whether a file is shown as a voice note. @param {FileInfo} f */
export function isVoice(f) {
  return f.mimeType.startsWith("audio/") && f.waveform.length > 0;
}

/** Whether a file is audio the player shows. @param {FileInfo} f */
export function isAudio(f) {
  return f.mimeType.startsWith("audio/");
}

/** m:ss, to the nearest second, as players show a length (video bubbles too). @param {number} ms */
export function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * The waveform folded to at most MAX_BARS bars, each 0–1.
 * @param {number[]} wave
 */
function bars(wave) {
  const n = Math.min(MAX_BARS, wave.length);
  const out = [];
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * wave.length) / n);
    const to = Math.max(from + 1, Math.floor(((i + 1) * wave.length) / n));
    out.push(Math.max(...wave.slice(from, to)) / 255);
  }
  return out;
}

/**
 * The player of an audio message.
 * @param {string} id the message id
 * @param {FileInfo} f
 * @param {string | null} url the decrypted file's blob: URL, or null while it is not here
 * @param {() => void} fetchFile asks for the file
 * @param {HTMLElement | null} header the file's name and size, for audio that is not a voice note
 * @returns {HTMLElement}
 */
export function audioView(id, f, url, fetchFile, header) {
  const voice = isVoice(f);
  const playing = player?.id === id && !player.audio.paused;
  const play = h("button", { class: "voice-play", type: "button" }, icon(playing ? "pauseFill" : "playFill"));
  label(play, playing ? t("pause") : t("play"));
  const levels = voice ? bars(f.waveform) : [];
  const wave = h("div", { class: voice ? "voice-wave" : "voice-wave voice-track", role: "slider", tabindex: "0", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" },
    voice
      ? levels.map((v) => h("span", { class: "voice-bar", style: `height: ${Math.max(12, Math.round(v * 100))}%` }))
      : [h("span", { class: "voice-track-fill" })]);
  label(wave, t("seekVoice"));
  const time = h("span", { class: "voice-time" }, clock(f.durationMs));
  const box = h("div", { class: voice ? "voice" : "voice audio", "data-voice": id, "data-ready": url ? "true" : "false" },
    header, h("div", { class: "voice-row" }, play, wave, time));
  label(box, voice ? `${t("voiceMessage")} ${clock(f.durationMs)}` : f.fileName || t("audioFile"));

  play.addEventListener("click", () => {
    if (!url) {
      playWhenReady = id;
      fetchFile();
      return;
    }
    toggle(id, url, f.durationMs);
  });
  /** @param {number} frac */
  const seek = (frac) => {
    if (!url) return;
    const p = ensure(id, url, f.durationMs);
    const dur = length(p);
    if (dur > 0) p.audio.currentTime = (Math.max(0, Math.min(1, frac)) * dur) / 1000;
    paint();
  };
  /** @param {PointerEvent} e */
  const at = (e) => {
    const r = wave.getBoundingClientRect();
    return r.width ? (e.clientX - r.left) / r.width : 0;
  };
  wave.addEventListener("pointerdown", (e) => {
    if (!url) return;
    wave.setPointerCapture(e.pointerId);
    seek(at(e));
  });
  wave.addEventListener("pointermove", (e) => wave.hasPointerCapture(e.pointerId) && seek(at(e)));
  wave.addEventListener("keydown", (e) => {
    if (!url || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
    e.preventDefault();
    const p = ensure(id, url, f.durationMs);
    const dur = length(p);
    if (dur > 0) seek((p.audio.currentTime * 1000) / dur + (e.key === "ArrowRight" ? 0.05 : -0.05));
  });

  if (url && playWhenReady === id) {
    playWhenReady = "";
    queueMicrotask(() => toggle(id, url, f.durationMs));
  }
  if (player?.id === id) requestAnimationFrame(paint);
  return box;
}

/**
 * The player for a note, made if another (or none) was loaded.
 * @param {string} id @param {string} url @param {number} durationMs
 */
function ensure(id, url, durationMs) {
  if (player?.id === id) return player;
  if (player) {
    player.audio.pause();
    const old = player.id;
    player = null;
    paintOne(old, 0, false, -1);
  }
  const audio = new Audio(url);
  audio.preload = "auto";
  const p = { id, audio, durationMs };
  audio.addEventListener("play", loop);
  audio.addEventListener("pause", paint);
  audio.addEventListener("loadedmetadata", paint);
  audio.addEventListener("ended", () => {
    audio.currentTime = 0;
    paint();
  });
  player = p;
  return p;
}

/** The length in ms: the descriptor's, else the file's own (audio from the CLI carries none). @param {{ audio: HTMLAudioElement, durationMs: number }} p */
function length(p) {
  if (p.durationMs > 0) return p.durationMs;
  return Number.isFinite(p.audio.duration) ? p.audio.duration * 1000 : 0;
}

/** @param {string} id @param {string} url @param {number} durationMs */
function toggle(id, url, durationMs) {
  const p = ensure(id, url, durationMs);
  if (p.audio.paused) p.audio.play().catch(() => paint());
  else p.audio.pause();
  paint();
}

/** Repaints every frame while a note plays. */
function loop() {
  cancelAnimationFrame(frame);
  const step = () => {
    paint();
    if (player && !player.audio.paused) frame = requestAnimationFrame(step);
  };
  frame = requestAnimationFrame(step);
}

/** Paints the current note's button, bars and time. */
function paint() {
  if (!player) return;
  const dur = length(player);
  const pos = player.audio.currentTime * 1000;
  const frac = dur > 0 ? Math.min(1, pos / dur) : 0;
  paintOne(player.id, frac, !player.audio.paused, pos > 0 || !player.audio.paused ? pos : -1);
}

/**
 * @param {string} id
 * @param {number} frac played so far, 0–1
 * @param {boolean} playing
 * @param {number} pos the position to show in ms, or -1 for the length
 */
function paintOne(id, frac, playing, pos) {
  const box = document.querySelector(`[data-voice="${CSS.escape(id)}"]`);
  if (!box) return;
  const play = box.querySelector(".voice-play");
  if (play && play.getAttribute("data-playing") !== String(playing)) {
    play.setAttribute("data-playing", String(playing));
    play.replaceChildren(icon(playing ? "pauseFill" : "playFill"));
    label(play, playing ? t("pause") : t("play"));
  }
  const barsEl = box.querySelectorAll(".voice-bar");
  barsEl.forEach((b, i) => b.classList.toggle("played", (i + 0.5) / barsEl.length <= frac));
  const fill = /** @type {HTMLElement | null} */ (box.querySelector(".voice-track-fill"));
  if (fill) fill.style.width = `${(frac * 100).toFixed(1)}%`;
  box.querySelector(".voice-wave")?.setAttribute("aria-valuenow", String(Math.round(frac * 100)));
  const time = box.querySelector(".voice-time");
  if (time && pos >= 0) time.textContent = clock(pos);
  else if (time && player?.id === id) time.textContent = clock(length(player));
}

/**
 * Opens the recorder for a chat in a small window of its own (popup/record.js
 * says why not here); the popup closes by itself when the window takes focus.
 * @param {string} chat
 * @param {string} name
 */
export function openRecorder(chat, name) {
  const url = chrome.runtime.getURL(`popup/record.html?chat=${encodeURIComponent(chat)}&name=${encodeURIComponent(name)}`);
  chrome.windows.create({ url, type: "popup", width: 380, height: 260, focused: true }).catch((err) => console.error("tether: recorder", err));
}
