// @ts-check
// Linking a browser: the camera with a framing square (or the pairing
// code), "Link Chrome on Linux?" with what the code carries, then the
// progress while the history is sent. The request, progress and failures
// come from the core (snapshot.primary); this module only shows them.

import { ready } from "../engine.js";
import * as scanner from "../scanner.js";
import { app, el, errorText, input, render, showError } from "../state.js";

/** @typedef {import("../../wasm/tether_app.js").LinkError} LinkError */

/** The browser being linked, for the progress screen. */
let linking = { name: "" };
/** The last text scanned and when, so one QR held up is read once. */
let lastScan = { text: "", at: 0 };
let scanning = false;

/**
 * A link failure in words.
 * @param {LinkError} e
 */
function explain(e) {
  switch (e.kind) {
    case "expired":
      return "That code expired. Tether's popup in your browser shows a new one by itself within a few seconds: scan the new one.";
    case "wrongServer":
      return `This QR code belongs to another Tether server. Link the browser through ${location.host}: in its settings, choose this server.`;
    case "notTether":
      return "That is not a Tether link code. Open Tether in your browser and scan the code its popup shows.";
    case "wrongCode":
      return "That code was not found or did not match. Check the code your browser shows now (it makes a new one by itself when one expires) and type it again.";
    default:
      return e.message;
  }
}

/**
 * "chrome/linux" → "Chrome · Linux".
 * @param {string} platform
 */
export function platformLabel(platform) {
  const names = /** @type {Record<string, string>} */ ({
    chrome: "Chrome", firefox: "Firefox", edge: "Edge", safari: "Safari", web: "Web app", cli: "Command line",
    linux: "Linux", windows: "Windows", macos: "macOS", mac: "macOS", android: "Android", ios: "iOS", chromeos: "ChromeOS",
  });
  return platform.split("/").map((p) => names[p] ?? p).join(" · ");
}

// ---- camera -------------------------------------------------------------------

export function openLink() {
  app.overlay = "link";
  app.scanProblem = null;
  ready.then((core) => core.clearLink()).catch(() => {});
  render();
}

/** Entering the camera screen: start it (again after a failure). */
export function enterCamera() {
  app.scanProblem = null;
  delete el("camera").dataset.kind;
  el("camera-retry").hidden = true;
  const status = el("scan-status");
  status.dataset.kind = "info";
  status.textContent = "Open Tether in your browser's toolbar and point the camera at its QR code.";
  scanner
    .start(/** @type {HTMLVideoElement} */ (el("camera")), onScan)
    .then(() => renderLink())
    .catch((/** @type {unknown} */ err) => {
      app.scanProblem = errorText(err);
      el("camera").dataset.kind = err instanceof scanner.CameraError ? err.kind : "other";
      el("camera-retry").hidden = false;
      renderLink();
    });
}

export function leaveCamera() {
  scanner.stop();
}

/** @param {string} text */
async function onScan(text) {
  const now = Date.now();
  if (scanning || (text === lastScan.text && now - lastScan.at < 4000)) return;
  lastScan = { text, at: now };
  scanning = true;
  try {
    const outcome = await (await ready).linkFromUri(text);
    app.scanProblem = outcome.error ? explain(outcome.error) : null;
  } catch (err) {
    app.scanProblem = errorText(err);
  } finally {
    scanning = false;
  }
  render();
}

export function renderLink() {
  const failure = app.snap?.primary?.error;
  const problem = failure ? explain(failure) : app.scanProblem;
  const status = el("scan-status");
  status.dataset.kind = problem ? "problem" : "info";
  status.textContent = problem ?? "Open Tether in your browser's toolbar and point the camera at its QR code.";
}

// ---- pairing code -------------------------------------------------------------

export function renderLinkCode() {
  const p = app.snap?.primary;
  const waiting = p?.progress?.stage === "pairing";
  el("code-waiting").hidden = !waiting;
  /** @type {HTMLButtonElement} */ (el("code-submit")).disabled = waiting;
  showError("code-error", p?.error ? explain(p.error) : app.scanProblem);
}

async function submitCode() {
  const code = input("code-input").value.trim().toUpperCase();
  app.scanProblem = null;
  try {
    await (await ready).linkWithCode(code);
  } catch (err) {
    app.scanProblem = errorText(err);
  }
  render();
}

// ---- "Link Chrome on Linux?" and progress ------------------------------------------

export function renderLinkConfirm() {
  const ask = app.snap?.primary?.request;
  if (!ask) return;
  linking = { name: ask.name || platformLabel(ask.platform) };
  el("link-confirm-title").textContent = `Link ${linking.name}?`;
  el("link-confirm-name").textContent = ask.name || "—";
  el("link-confirm-platform").textContent = platformLabel(ask.platform);
  el("link-confirm-server").textContent = location.host;
  el("link-confirmation-box").hidden = !ask.confirmation;
  el("link-confirmation").textContent = ask.confirmation ?? "";
}

export function renderLinkProgress() {
  const progress = app.snap?.primary?.progress;
  if (!progress) return;
  const done = progress.stage === "done";
  el("link-progress-spinner").hidden = done;
  el("link-done-icon").hidden = !done;
  el("link-done").hidden = !done;
  if (progress.stage === "done") {
    el("link-progress-title").textContent = `${linking.name || "The browser"} is linked`;
    el("link-progress-body").textContent = `${progress.messages} ${progress.messages === 1 ? "message" : "messages"} of history sent. It shows your chats now.`;
  } else if (progress.stage === "sendingHistory") {
    el("link-progress-title").textContent = "Sending history…";
    el("link-progress-body").textContent = "Your recent chats are encrypted for the new browser. Keep this app open a moment.";
  } else {
    el("link-progress-title").textContent = "Linking…";
    el("link-progress-body").textContent = "Adding the browser to your account.";
  }
}

export function wireLinkScreens() {
  el("enter-code").addEventListener("click", () => {
    app.overlay = "link-code";
    app.scanProblem = null;
    render();
    input("code-input").focus();
  });
  el("code-scan").addEventListener("click", openLink);
  el("camera-retry").addEventListener("click", enterCamera);
  el("link-cancel").addEventListener("click", () => {
    app.overlay = null;
    render();
  });
  el("code-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submitCode();
  });
  el("code-input").addEventListener("input", () => {
    // Typed as XXXX-XXXX: the dash goes in by itself.
    const raw = input("code-input").value.toUpperCase().replace(/[^0-9A-Z]/g, "").slice(0, 8);
    input("code-input").value = raw.length > 4 ? `${raw.slice(0, 4)}-${raw.slice(4)}` : raw;
  });
  el("link-confirm-yes").addEventListener("click", async () => {
    try {
      await (await ready).confirmLink();
    } catch (err) {
      app.scanProblem = errorText(err);
      render();
    }
  });
  el("link-confirm-no").addEventListener("click", async () => {
    await (await ready).clearLink();
    app.overlay = null;
    render();
  });
  el("link-done").addEventListener("click", async () => {
    await (await ready).clearLink();
    app.overlay = "devices";
    render();
  });
}
