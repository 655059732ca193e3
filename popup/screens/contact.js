// @ts-check
// Contact info (from the chat header): the contact's name and handle, the
// name they chose (always beside their handle), whether the safety number
// was compared, the number as digits and as a QR (both made by the core),
// "Mark as verified", and a changed key with "Accept new key".

import { $, $button, paintAvatar, t, toast } from "../dom.js";
import { post } from "../port.js";
import { data, redraw, ui } from "../state.js";
import { qrNode } from "./link.js";

/** @typedef {import("../state.js").ContactInfo} ContactInfo */

/** Opens the open chat's contact info. */
export function openContact() {
  if (!ui.chat) return;
  ui.contactOpen = true;
  if (data.contact?.chat !== ui.chat) data.contact = null;
  post({ kind: "contactInfo", chat: ui.chat });
  redraw();
}

/** Asks again while the screen is open (a snapshot came: the key may have changed). */
export function refreshContact() {
  if (ui.screen === "contact" && ui.chat) post({ kind: "contactInfo", chat: ui.chat });
}

/**
 * The worker's answer.
 * @param {string} chat
 * @param {ContactInfo | null} info
 */
export function onContactInfo(chat, info) {
  if (chat !== ui.chat) return;
  data.contact = { chat, info };
  if (ui.screen === "contact") renderContact();
}

/** The QR last drawn, so an unchanged one is not redrawn. */
let drawnQr = "";

export function renderContact() {
  const info = data.contact?.chat === ui.chat ? data.contact?.info ?? null : null;
  const view = $("screen-contact");
  view.setAttribute("aria-busy", info ? "false" : "true");
  if (!info) return;
  paintAvatar($("contact-avatar"), info.name, info.handle);
  $("contact-name").textContent = info.name;
  $("contact-handle").textContent = `@${info.handle}`;
  const profile = info.profileName && info.name !== info.profileName ? t("profileNameLine", info.profileName) : "";
  $("contact-profile").textContent = profile;
  $("contact-profile").hidden = !profile;

  const state = info.warning ? "changed" : info.verified ? "verified" : "unverified";
  const badge = $("contact-state");
  badge.dataset.state = state;
  badge.textContent = t({ changed: "keyChangedBadge", verified: "verifiedBadge", unverified: "unverifiedBadge" }[state]);

  $("contact-key-changed").hidden = !info.warning;
  $("contact-warning").textContent = info.warning ?? "";

  const number = info.number ?? "";
  $("contact-number-card").hidden = !!info.warning;
  $("safety-number").textContent = number;
  $("safety-number").hidden = !number;
  $("safety-number").setAttribute("aria-label", t("safetyNumberLabel", number));
  $("safety-pending").hidden = !!number;
  const qr = $("safety-qr");
  qr.hidden = !info.qrSvg;
  if ((info.qrSvg ?? "") !== drawnQr) {
    const node = info.qrSvg ? qrNode(info.qrSvg) : null;
    qr.replaceChildren(...(node ? [node] : []));
    drawnQr = info.qrSvg ?? "";
  }
  $button("mark-verified").hidden = info.verified || !number;
  $("verified-note").hidden = !info.verified;
}

export function wireContact() {
  $("mark-verified").addEventListener("click", () => {
    if (!ui.chat) return;
    post({ kind: "markVerified", chat: ui.chat });
    toast(t("markedVerified", data.contact?.info?.name ?? ui.chat));
  });
  $("accept-key").addEventListener("click", () => {
    if (ui.chat) post({ kind: "acceptKey", chat: ui.chat });
  });
  // A chat's key warning leads here.
  $("chat-warning").addEventListener("click", openContact);
}
