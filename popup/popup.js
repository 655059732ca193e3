// The popup is a view: it renders the worker's snapshot and holds no state of
// its own. It paints at once from the cached snapshot, then follows the live
// ones the worker sends over a runtime Port.

const $ = (id) => document.getElementById(id);
const t = (key, fallback) => chrome.i18n.getMessage(key) || fallback;

for (const el of document.querySelectorAll("[data-i18n]")) {
  el.textContent = t(el.dataset.i18n, el.textContent);
}

/** Renders one snapshot (from the cache or the worker). */
function render(snap) {
  const state = snap.linked ? "linked" : "unlinked";
  $("view").dataset.state = state;
  $("view").removeAttribute("aria-busy");
  const pill = $("pill");
  pill.dataset.state = state;
  pill.textContent = snap.linked ? t("stateLinkedTitle", "Linked") : t("stateNotLinkedTitle", "Not linked yet");
  $("title").textContent = snap.linked
    ? `${t("stateLinkedTitle", "Linked")}: ${snap.handle}`
    : t("stateNotLinkedTitle", "Not linked yet");
  $("body").textContent = snap.linked ? "" : t("stateNotLinkedBody", "");
  $("server").textContent = snap.server ?? "–";
  $("core-version").textContent = snap.version;
  $("protocol-version").textContent = String(snap.protocolVersion);
}

function renderError(message) {
  $("view").dataset.state = "error";
  $("view").removeAttribute("aria-busy");
  $("pill").dataset.state = "error";
  $("pill").textContent = "!";
  $("title").textContent = t("stateErrorTitle", "The core didn't start");
  $("body").textContent = message;
}

chrome.storage.session.get("snapshot").then(({ snapshot }) => {
  if (snapshot && $("view").dataset.state === "starting") render(snapshot);
});

const port = chrome.runtime.connect({ name: "popup" });
port.onMessage.addListener((msg) => {
  if (msg.kind === "snapshot") render(msg.snapshot);
  else if (msg.kind === "error") renderError(msg.message);
});
port.postMessage({ kind: "snapshot" });

$("settings").addEventListener("click", () => chrome.runtime.openOptionsPage());
