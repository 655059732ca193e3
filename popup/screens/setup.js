// @ts-check
// First run: which server this browser talks to. The worker checks it and
// answers with `serverChecked` (its key fingerprint already formatted).

import { $, $button, $input, fingerprintLines, h, t } from "../dom.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { data, redraw, ui } from "../state.js";

export function renderSetup() {
  const input = $input("server-input");
  // Prefilled with the server the core has (the build's default on first run).
  if (!ui.setupTouched) input.value = data.snap?.server ?? "";
  const btn = $button("check-server");
  btn.disabled = ui.checking;
  btn.classList.toggle("busy", ui.checking);
  const text = btn.querySelector("span:last-child");
  if (text) text.textContent = ui.checking ? t("checkingServer") : t("checkServer");
  const box = $("setup-result");
  box.replaceChildren();
  box.className = "check-result";
  input.removeAttribute("aria-invalid");
  if (!ui.check || ui.checking) return;
  if (ui.check.ok) {
    box.classList.add("ok");
    box.append(
      h("p", { class: "strong" }, icon("lock"), t("serverOk")),
      h("p", { class: "muted small" }, t("labelFingerprint")),
      h("code", { id: "setup-fingerprint", class: "fingerprint" }, ui.check.fingerprint ? fingerprintLines(ui.check.fingerprint) : "–"),
    );
  } else {
    box.classList.add("bad");
    input.setAttribute("aria-invalid", "true");
    box.append(h("p", { id: "setup-error" }, icon("alert"), ui.check.error || t("serverUnreachable", input.value.trim())));
  }
}

/** @param {SubmitEvent} event */
function submitServer(event) {
  event.preventDefault();
  const input = $input("server-input");
  const url = input.value.trim();
  // Only an address with a scheme and a host is worth a round trip.
  if (!/^(https?|wss?):\/\/[^\s/]+/i.test(url)) {
    ui.check = { ok: false, fingerprint: null, error: t("serverInvalid") };
    redraw();
    input.focus();
    return;
  }
  ui.checking = true;
  ui.check = null;
  redraw();
  post({ kind: "setServer", url });
}

export function wireSetup() {
  $("setup-form").addEventListener("submit", submitServer);
  $input("server-input").addEventListener("input", () => {
    ui.setupTouched = true;
    if (ui.check && !ui.check.ok) {
      ui.check = null;
      renderSetup();
    }
  });
}
