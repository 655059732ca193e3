// @ts-check
// What a file message says about an image before its bytes arrive: its
// dimensions and a small JPEG thumbnail (docs/protocol.md §14.2). Used by
// the popup (a chosen file) and the worker (an image sent from the context
// menu): both have createImageBitmap and OffscreenCanvas.

/** Longest side of a thumbnail, in pixels, and its largest size (the protocol's). */
const THUMB_SIDE = 320;
const MAX_THUMBNAIL = 32 * 1024;

/** Image types the browser decodes for a thumbnail; others go as documents. */
export const THUMBNAIL_TYPES = /^image\/(jpeg|png|gif|webp|bmp)$/;

/**
 * Name, type, size and for images dimensions and a thumbnail.
 * @param {Blob} file
 * @param {string} name
 * @returns {Promise<import("../wasm/tether_core.js").FileInfo>}
 */
export async function describe(file, name) {
  /** @type {import("../wasm/tether_core.js").FileInfo} */
  const info = { fileName: name || "file", mimeType: file.type || "", size: file.size, width: 0, height: 0, thumbnail: "", durationMs: 0, waveform: [] };
  if (!THUMBNAIL_TYPES.test(file.type)) return info;
  try {
    const bmp = await createImageBitmap(file);
    info.width = bmp.width;
    info.height = bmp.height;
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
      if (jpeg.size <= MAX_THUMBNAIL) {
        info.thumbnail = await base64(jpeg);
        break;
      }
    }
    bmp.close();
  } catch {
    // not an image the browser decodes: sent as a document
  }
  return info;
}

/** @param {Blob} blob */
async function base64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...Array.from(bytes.subarray(i, i + 0x8000)));
  return btoa(s);
}
