// Options page: a view over the worker's snapshot, like the popup.
for (const el of document.querySelectorAll("[data-i18n]")) {
  el.textContent = chrome.i18n.getMessage(el.dataset.i18n) || el.textContent;
}
const port = chrome.runtime.connect({ name: "popup" });
port.onMessage.addListener((msg) => {
  if (msg.kind === "snapshot") document.getElementById("server").textContent = msg.snapshot.server;
});
port.postMessage({ kind: "snapshot" });
