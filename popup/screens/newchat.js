// @ts-check
// New chat: pick a contact, or type any handle. Whether the text is a handle
// (and its normal form) is the core's call: every change of the text asks
// the worker (`checkHandle`), and the answer for the text still in the box
// is shown.

import { $, $input, avatar, h, t } from "../dom.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { checkedHandle, contacts, findChat, findContact, handleError, matches, myHandle, redraw, ui } from "../state.js";
import { openChat } from "./chat.js";

/** @typedef {import("../state.js").ContactSummary} ContactSummary */

/**
 * Asks the core whether typed text is a handle (the answer arrives as `handleChecked`).
 * @param {string} text
 */
export function checkHandle(text) {
  if (text.trim() && ui.handleCheck?.text !== text) post({ kind: "checkHandle", text });
}

export function openNewChat() {
  ui.newChat = true;
  ui.contactQuery = "";
  $input("new-chat-input").value = "";
  redraw();
}

/**
 * Opens the chat with a handle (normalised by the core), adding the contact first if there is no chat yet.
 * @param {string} handle
 * @param {string} name
 */
export function startChat(handle, name) {
  // One's own handle is the note to self: no contact to add.
  if (!findChat(handle) && handle !== myHandle()) post({ kind: "newChat", handle, name });
  ui.query = "";
  $input("search").value = "";
  openChat(handle);
}

/**
 * A contact: avatar, name, handle (or the warning about them); click starts a chat.
 * @param {ContactSummary} c
 */
export function contactRow(c) {
  const b = h("button", { class: "chat-open", type: "button", onclick: () => startChat(c.handle, c.name) }, ...contactFace(c));
  return h("li", { class: "chat-row contact-row", "data-handle": c.handle }, b);
}

/**
 * A contact's avatar, name and handle (or its safety warning), as the
 * contact list and the group member picker show it.
 * @param {ContactSummary} c
 */
export function contactFace(c) {
  return [
    avatar(c.name, c.handle),
    h("span", { class: "chat-main" },
      h("span", { class: "chat-top" }, h("span", { class: "chat-name" }, c.name)),
      h("span", { class: "chat-bottom" },
        c.warning
          ? h("span", { class: "chat-preview warn-text" }, icon("alert"), h("span", { class: "ellipsis" }, c.warning))
          : h("span", { class: "chat-preview" }, `@${c.handle}`))),
  ];
}

/**
 * The row that starts a chat with a handle the core accepted.
 * @param {string} handle
 */
function newHandleRow(handle) {
  const b = h("button", { class: "chat-open", type: "button", onclick: () => startChat(handle, findContact(handle)?.name ?? "") },
    h("span", { class: "avatar new" }, icon("userPlus")),
    h("span", { class: "chat-main" },
      h("span", { class: "chat-top" }, h("span", { class: "chat-name" }, t("startChatWith", handle))),
      h("span", { class: "chat-bottom" }, h("span", { class: "chat-preview" }, t("startChatHint")))));
  return h("li", { class: "chat-row contact-row new-handle", "data-handle": handle }, b);
}

export function renderNewChat() {
  const q = ui.contactQuery;
  const found = contacts().filter((c) => matches(q, c.name, c.handle));
  /** @type {HTMLElement[]} */
  const rows = [];
  const handle = checkedHandle(q);
  if (handle && !findContact(handle)) rows.push(newHandleRow(handle));
  if (found.length) rows.push(h("li", { class: "list-heading", role: "presentation" }, t("contactsLabel")));
  rows.push(...found.map(contactRow));
  $("contact-list").replaceChildren(...rows);

  const empty = $("contacts-empty");
  empty.hidden = rows.length > 0;
  const typed = q.trim();
  const why = handleError(q);
  empty.replaceChildren(h("p", { class: "muted" }, typed ? t("noContactsMatch", typed) : t("noContacts")));
  if (why) empty.append(h("p", { id: "handle-error", class: "warn-text small" }, icon("alert"), h("span", {}, why)));
}

export function wireNewChat() {
  const input = $input("new-chat-input");
  input.addEventListener("input", () => {
    ui.contactQuery = input.value;
    checkHandle(input.value);
    renderNewChat();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      /** @type {HTMLElement | null} */ ($("contact-list").querySelector(".chat-open"))?.click();
    }
  });
}
