// @ts-check
// Before an account: welcome (create or restore), register (handle, name),
// the recovery phrase (24 words, then 3 of them asked back) and restore.

import { checkHandle } from "../../wasm/tether_app.js";
import { ready } from "../engine.js";
import { app, el, errorText, input, render, showError } from "../state.js";

/** How many of the 24 words the person types back. */
const ASKED = 3;

export function renderWelcome() {
  showError("welcome-reason", app.snap?.unlinkedReason);
  el("welcome-server").textContent = `Accounts are kept on ${location.host}, end-to-end encrypted.`;
}

export function renderRegister() {
  const submit = /** @type {HTMLButtonElement} */ (el("register-submit"));
  submit.disabled = app.registering;
  submit.textContent = app.registering ? "Creating…" : "Create account";
  if (app.registering && app.snap?.error && !app.snap.account) {
    // The server said no (a handle taken): show why, let them try again.
    app.registering = false;
    submit.disabled = false;
    submit.textContent = "Create account";
    showError("register-error", app.snap.error);
  }
}

async function register() {
  const check = checkHandle(input("register-handle").value);
  input("register-handle").setAttribute("aria-invalid", String(!check.handle));
  if (!check.handle) return showError("register-error", check.error ?? "That handle is not valid");
  showError("register-error", null);
  app.registering = true;
  render();
  try {
    const core = await ready;
    await core.register(check.handle, input("register-name").value, location.origin);
  } catch (err) {
    app.registering = false;
    showError("register-error", errorText(err));
    render();
  }
}

/** The account exists now: show its recovery phrase (once, after registering). */
export async function afterRegistered() {
  app.registering = false;
  try {
    const words = (await (await ready).recoveryPhrase()).trim().split(/\s+/);
    app.phrase = { words, ask: pick(words.length), confirming: false, error: null };
  } catch (err) {
    app.phrase = { words: [], ask: [], confirming: false, error: errorText(err) };
  }
  render();
}

/**
 * `ASKED` distinct word positions, in order.
 * @param {number} n
 */
function pick(n) {
  const chosen = new Set();
  const rnd = new Uint32Array(16);
  crypto.getRandomValues(rnd);
  for (const r of rnd) {
    if (chosen.size === ASKED) break;
    chosen.add(r % n);
  }
  return [...chosen].sort((a, b) => a - b);
}

export function renderPhrase() {
  const p = app.phrase;
  if (!p) return;
  const list = el("phrase-words");
  list.replaceChildren(
    ...p.words.map((w, i) => {
      const li = document.createElement("li");
      li.dataset.index = String(i + 1);
      li.textContent = w;
      return li;
    }),
  );
  list.hidden = !p.words.length;
  showError("phrase-error", p.error && `The recovery phrase is not available: ${p.error}`);
  el("phrase-next").textContent = p.words.length ? "I wrote them down" : "Continue";
}

export function renderPhraseConfirm() {
  const p = app.phrase;
  if (!p) return;
  p.ask.forEach((index, i) => {
    el(`phrase-confirm-label-${i + 1}`).textContent = `Word ${index + 1}`;
  });
  showError("phrase-confirm-error", p.error);
}

function confirmPhrase() {
  const p = app.phrase;
  if (!p) return;
  const typed = p.ask.map((_, i) => input(`phrase-confirm-${i + 1}`).value.trim().toLowerCase());
  const wrong = p.ask.filter((index, i) => typed[i] !== p.words[index].toLowerCase());
  if (wrong.length) {
    p.error = `Word ${wrong.map((i) => i + 1).join(", ")} does not match. Check what you wrote down.`;
    return render();
  }
  app.phrase = null;
  render();
}

export function renderRestore() {
  const submit = /** @type {HTMLButtonElement} */ (el("restore-submit"));
  submit.disabled = app.restoring;
  submit.textContent = app.restoring ? "Restoring…" : "Restore";
  if (app.restoring && app.snap?.error && !app.snap.account) {
    app.restoring = false;
    submit.disabled = false;
    submit.textContent = "Restore";
    showError("restore-error", app.snap.error);
  }
}

async function restore() {
  const check = checkHandle(input("restore-handle").value);
  if (!check.handle) return showError("restore-error", check.error ?? "That handle is not valid");
  const phrase = /** @type {HTMLTextAreaElement} */ (el("restore-phrase")).value.trim().toLowerCase().split(/\s+/).join(" ");
  if (phrase.split(" ").length !== 24) return showError("restore-error", "The recovery phrase has 24 words.");
  showError("restore-error", null);
  app.restoring = true;
  render();
  try {
    await (await ready).restore(check.handle, phrase, location.origin);
  } catch (err) {
    app.restoring = false;
    showError("restore-error", errorText(err));
    render();
  }
}

/**
 * Asks once whether new messages may show as notifications: on the tap
 * that creates or restores the account (browsers only ask on a gesture).
 * The settings switch asks again if it was dismissed.
 */
function askForNotifications() {
  if (typeof Notification !== "undefined" && Notification.permission === "default") Notification.requestPermission().catch(() => {});
}

export function wireAccount() {
  el("welcome-register").addEventListener("click", () => {
    app.start = "register";
    render();
  });
  el("welcome-restore").addEventListener("click", () => {
    app.start = "restore";
    render();
  });
  for (const id of ["register-back", "restore-back"]) {
    el(id).addEventListener("click", () => {
      if (app.registering || app.restoring) return;
      app.start = "welcome";
      render();
    });
  }
  el("register-form").addEventListener("submit", (e) => {
    e.preventDefault();
    askForNotifications();
    register();
  });
  el("restore-form").addEventListener("submit", (e) => {
    e.preventDefault();
    askForNotifications();
    restore();
  });
  el("phrase-next").addEventListener("click", () => {
    if (!app.phrase) return;
    if (!app.phrase.words.length) app.phrase = null;
    else app.phrase.confirming = true;
    render();
  });
  el("phrase-back").addEventListener("click", () => {
    if (app.phrase) app.phrase = { ...app.phrase, confirming: false, error: null };
    render();
  });
  el("phrase-confirm").addEventListener("submit", (e) => {
    e.preventDefault();
    confirmPhrase();
  });
}
