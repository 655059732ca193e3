// @ts-check
// The rear camera, read about four times a second: each frame is drawn to
// a canvas (at most 640 px a side) and its pixels go to the core's QR
// decoder (rqrr, in wasm; BarcodeDetector is missing on many phones).

import { decodeQr } from "../wasm/tether_app.js";

/** Frames looked at per second. */
const FPS = 4;
/** Longest side a frame is scaled to before decoding. */
const MAX_SIDE = 640;

/** Why the camera could not start, in words for the person. */
export class CameraError extends Error {
  /**
   * @param {"refused" | "missing" | "insecure" | "other"} kind
   * @param {string} message
   */
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** @type {MediaStream | null} */
let stream = null;
let timer = 0;

/**
 * Starts the rear camera in `video` and calls `onText` with the text of
 * every QR code it sees, until `stop()`.
 * @param {HTMLVideoElement} video
 * @param {(text: string) => void} onText
 */
export async function start(video, onText) {
  stop();
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new CameraError("insecure", "The camera needs a secure connection: open this app over https (or on localhost).");
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (err) {
    const name = err instanceof DOMException ? err.name : "";
    if (name === "NotAllowedError" || name === "SecurityError") {
      throw new CameraError("refused", "Camera access was refused. Allow the camera for this site in your browser's site settings (the icon left of the address), then try again — or enter a code instead.");
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "NotReadableError") {
      throw new CameraError("missing", "No camera could be used on this device. Enter the code instead.");
    }
    throw new CameraError("other", `The camera did not start: ${err instanceof Error ? err.message : String(err)}`);
  }
  video.srcObject = stream;
  await video.play().catch(() => {});
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  timer = window.setInterval(() => {
    if (!ctx || video.readyState < 2 || !video.videoWidth) return;
    const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const w = Math.round(video.videoWidth * scale);
    const h = Math.round(video.videoHeight * scale);
    if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
    ctx.drawImage(video, 0, 0, w, h);
    const text = decodeQr(new Uint8Array(ctx.getImageData(0, 0, w, h).data.buffer), w, h);
    if (text) onText(text);
  }, 1000 / FPS);
}

/** Stops the camera (the light goes off) and the frame loop. */
export function stop() {
  window.clearInterval(timer);
  timer = 0;
  for (const track of stream?.getTracks() ?? []) track.stop();
  stream = null;
}
