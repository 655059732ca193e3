// @ts-check
// What a file message says about an image or a video before its bytes
// arrive: its dimensions, a small JPEG thumbnail and for a video its length
// (docs/protocol.md §14.2); also a link preview's picture. Used by the
// popup and the web app (a chosen file) and the worker (an image sent from
// the context menu, a shared page's preview): all have
// createImageBitmap and OffscreenCanvas. Only pages have a DOM, so only
// they describe videos (a frame from a <video> element); in the worker a
// video goes as a document.

/** Longest side of a thumbnail, in pixels, and its largest size (the protocol's). */
const THUMB_SIDE = 320;
const MAX_THUMBNAIL = 32 * 1024;
/** How long a video may take to give its first frame before it goes as a document. */
const VIDEO_TIMEOUT_MS = 5000;

/** Image types the browser decodes for a thumbnail; others go as documents. */
export const THUMBNAIL_TYPES = /^image\/(jpeg|png|gif|webp|bmp)$/;

/**
 * Name, type, size, and for images and videos the browser decodes
 * dimensions and a thumbnail (videos: their length too).
 * @param {Blob} file
 * @param {string} name
 * @returns {Promise<import("../wasm/tether_core.js").FileInfo>}
 */
export async function describe(file, name) {
  /** @type {import("../wasm/tether_core.js").FileInfo} */
  const info = { fileName: name || "file", mimeType: file.type || "", size: file.size, width: 0, height: 0, thumbnail: "", durationMs: 0, waveform: [] };
  if (THUMBNAIL_TYPES.test(file.type)) {
    try {
      const bmp = await createImageBitmap(file);
      info.width = bmp.width;
      info.height = bmp.height;
      info.thumbnail = await thumbnail(bmp);
      bmp.close();
    } catch {
      // not an image the browser decodes: sent as a document
    }
  } else if (file.type.startsWith("video/") && canPlayVideo(file.type)) {
    const frame = await videoFrame(file).catch(() => null); // not a video the browser decodes: sent as a document
    if (frame) {
      info.width = frame.bitmap.width;
      info.height = frame.bitmap.height;
      info.durationMs = frame.durationMs;
      info.thumbnail = await thumbnail(frame.bitmap).catch(() => "");
      frame.bitmap.close();
    }
  }
  return info;
}

/**
 * Whether this page can play a video type (false where there is no DOM).
 * @param {string} type
 */
export function canPlayVideo(type) {
  if (typeof document === "undefined") return false;
  return document.createElement("video").canPlayType(type) !== "";
}

/**
 * A JPEG of the picture, its longest side at most THUMB_SIDE, halved until
 * it fits in `maxBytes` (the protocol's 32 KiB for a file's thumbnail);
 * base64, or "" if none fits.
 * @param {ImageBitmap} bmp
 * @param {number} [maxBytes]
 */
export async function thumbnail(bmp, maxBytes = MAX_THUMBNAIL) {
  for (let side = THUMB_SIDE; side >= 40; side = Math.floor(side / 2)) {
    const scale = Math.min(1, side / Math.max(bmp.width, bmp.height));
    const w = Math.max(1, Math.round(bmp.width * scale));
    const hgt = Math.max(1, Math.round(bmp.height * scale));
    const canvas = new OffscreenCanvas(w, hgt);
    const ctx = canvas.getContext("2d");
    if (!ctx) break;
    ctx.fillStyle = "#fff"; // JPEG has no transparency
    ctx.fillRect(0, 0, w, hgt);
    ctx.drawImage(bmp, 0, 0, w, hgt);
    const jpeg = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.7 });
    if (jpeg.size <= maxBytes) return base64(jpeg);
  }
  return "";
}

/**
 * A frame of a video, a tenth of the way in (at most 1 s: past a fade from
 * black, before the story starts), and its length: a muted <video> on a
 * blob: URL, seeked there, its picture taken when `seeked` fires. Rejects
 * on a decoding error or after VIDEO_TIMEOUT_MS.
 * @param {Blob} file
 * @returns {Promise<{ bitmap: ImageBitmap, durationMs: number }>}
 */
async function videoFrame(file) {
  const url = URL.createObjectURL(file);
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  video.playsInline = true;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /**
   * The next of these events on the video (an error rejects).
   * @param {string} name
   * @returns {Promise<void>}
   */
  const next = (name) => new Promise((resolve, reject) => {
    video.addEventListener(name, () => resolve(), { once: true });
    video.addEventListener("error", () => reject(new Error("video not decoded")), { once: true });
  });
  const work = async () => {
    const meta = next("loadedmetadata");
    video.src = url;
    await meta;
    // A recording (MediaRecorder's WebM) may not say how long it is: a seek
    // past its end makes the browser find out.
    if (!Number.isFinite(video.duration)) {
      const known = next("durationchange");
      const there = next("seeked");
      video.currentTime = Number.MAX_SAFE_INTEGER;
      await known;
      while (!Number.isFinite(video.duration)) await next("durationchange");
      await there;
    }
    const duration = video.duration;
    const seeked = next("seeked");
    video.currentTime = Math.min(1, duration / 10);
    await seeked;
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) await next("loadeddata");
    if (!video.videoWidth || !video.videoHeight) throw new Error("no picture");
    return { bitmap: await createImageBitmap(video), durationMs: Math.round(duration * 1000) };
  };
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("video too slow to decode")), VIDEO_TIMEOUT_MS);
  });
  try {
    const working = work();
    working.catch(() => {}); // after the timeout, its end is of no interest
    return await Promise.race([working, /** @type {Promise<never>} */ (timeout)]);
  } finally {
    clearTimeout(timer);
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  }
}

/** @param {Blob} blob */
async function base64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...Array.from(bytes.subarray(i, i + 0x8000)));
  return btoa(s);
}
