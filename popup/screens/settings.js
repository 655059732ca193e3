// @ts-check
// Settings: the account, this device's name and notifications, the server
// and its key fingerprint, versions, and logging out.

import { $, $input, fingerprintLines, h, paintAvatar, t, toast } from "../dom.js";
import { post } from "../port.js";
import { data, redraw, ui } from "../state.js";

export function openSettings() {
  ui.settings = true;
  ui.logoutConfirm = false;
  redraw();
}

export function renderSettings() {
  const snap = data.snap;
  if (!snap) return;
  const linked = snap.state === "linked";
  const acct = snap.account;
  $("settings-account").hidden = !acct;
  if (acct) {
    paintAvatar($("settings-avatar"), acct.handle, acct.handle);
    $("account-handle").textContent = `@${acct.handle}`;
    $("account-device").textContent = t("accountDevice", snap.deviceName, acct.deviceId);
  }
  // The name can change only before linking (the primary shows it when asked to link).
  $("device-name").textContent = snap.deviceName;
  $("device-name").hidden = !linked;
  $("device-name-form").hidden = linked;
  const input = $input("device-name-input");
  if (document.activeElement !== input && !input.dataset.dirty) input.value = snap.deviceName;
  $("device-name-row").classList.toggle("editable", !linked);

  $input("notifications").checked = snap.notifications;
  renderBlocked(snap.blocked ?? []);
  $("logout-area").hidden = !linked;
  $("logout").hidden = ui.logoutConfirm;
  $("logout-confirm-box").hidden = !ui.logoutConfirm;
}

/**
 * Blocked senders, each with Unblock (the core forgets the block).
 * @param {import("../state.js").Snapshot["blocked"]} blocked
 */
function renderBlocked(blocked) {
  $("blocked-group").hidden = blocked.length === 0;
  $("blocked-list").replaceChildren(...blocked.map((b) =>
    h("li", { class: "row", "data-blocked": b.handle },
      h("span", { class: "row-label grow" }, `@${b.handle}`, b.reported ? h("span", { class: "muted small block" }, t("reportedSpam")) : null),
      h("button", { class: "btn small", type: "button", onclick: () => post({ kind: "answerRequest", handle: b.handle, action: "unblock" }) }, t("unblock")))));
}

/** Server, fingerprint and versions: shown in settings (and kept current everywhere). */
export function renderFacts() {
  const snap = data.snap;
  if (!snap) return;
  $("server").textContent = snap.server || "–";
  $("server-fingerprint").textContent = snap.serverFingerprint ? fingerprintLines(snap.serverFingerprint) : t("fingerprintUnknown");
  $("core-version").textContent = snap.version || "–";
  $("protocol-version").textContent = String(snap.protocolVersion);
}

export function wireSettings() {
  const notifications = $input("notifications");
  notifications.addEventListener("change", () => post({ kind: "setNotifications", on: notifications.checked }));
  const name = $input("device-name-input");
  name.addEventListener("input", () => (name.dataset.dirty = "1"));
  $("device-name-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = name.value.trim();
    if (!value) return;
    delete name.dataset.dirty;
    post({ kind: "setDeviceName", name: value });
    toast(t("deviceNameSaved"));
  });
  $("logout").addEventListener("click", () => {
    ui.logoutConfirm = true;
    renderSettings();
    $("logout-cancel").focus();
  });
  $("logout-cancel").addEventListener("click", () => {
    ui.logoutConfirm = false;
    renderSettings();
    $("logout").focus();
  });
  $("logout-confirm").addEventListener("click", () => {
    ui.logoutConfirm = false;
    post({ kind: "logout" });
    toast(t("loggingOut"));
    renderSettings();
  });
}
