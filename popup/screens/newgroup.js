// @ts-check
// Picking contacts with checkboxes: for a new group (a name, then
// "Create group") or to add to the open group ("Add"). The contacts and
// their names are the core's; the view keeps only what is typed and
// ticked. The core says whether a group may be made of them.

import { $, $button, $input, h, t, toast } from "../dom.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { contacts, matches, openGroup, redraw, ui } from "../state.js";
import { contactFace } from "./newchat.js";

/** @typedef {import("../state.js").ContactSummary} ContactSummary */

/** The most characters a group's name has (docs/protocol.md §15.2). */
const NAME_MAX = 100;

/**
 * Opens the picker: `create` from the new-chat screen, `add` from the open
 * group's info.
 * @param {"create" | "add"} mode
 */
export function openPicker(mode) {
  ui.picker = { mode, name: "", query: "", picked: [] };
  if (mode === "create") ui.newChat = false;
  $input("group-name-input").value = "";
  $input("group-search").value = "";
  redraw();
}

/** The contacts on offer: not already in the group being added to. */
function offered() {
  const members = new Set((ui.picker?.mode === "add" ? openGroup()?.members ?? [] : []).map((m) => m.handle));
  return contacts().filter((c) => !members.has(c.handle));
}

export function renderNewGroup() {
  const p = ui.picker;
  if (!p) return;
  const create = p.mode === "create";
  $("group-name-strip").hidden = !create;
  const all = offered();
  const shown = all.filter((c) => matches(p.query, c.name, c.handle));
  $("group-contacts").replaceChildren(...shown.map((c) => pickRow(c, p.picked.includes(c.handle))));
  const byHandle = new Map(all.map((c) => [c.handle, c]));
  $("group-picked").replaceChildren(...p.picked.map((handle) => chip(handle, byHandle.get(handle)?.name ?? handle)));
  $("group-picked").hidden = p.picked.length === 0;
  const empty = $("group-contacts-empty");
  empty.hidden = shown.length > 0;
  empty.replaceChildren(h("p", { class: "muted" }, all.length ? t("noContactsMatch", p.query.trim()) : t(create ? "groupNeedsContacts" : "everyoneInGroup")));
  const ready = p.picked.length > 0 && (!create || p.name.trim() !== "");
  const go = $button("group-create");
  go.disabled = !ready;
  go.textContent = create ? t("createGroup") : p.picked.length ? t("addMembersCount", p.picked.length) : t("addMembers");
  $("group-create-hint").textContent = create && !p.name.trim() ? t("groupNameFirst") : p.picked.length ? "" : t("pickMembers");
}

/**
 * A contact with its checkbox.
 * @param {ContactSummary} c
 * @param {boolean} picked
 */
function pickRow(c, picked) {
  const box = h("input", { type: "checkbox", class: "pick-box", checked: picked, "aria-label": c.name });
  box.addEventListener("change", () => toggle(c.handle));
  return h("li", { class: `chat-row pick-row${picked ? " is-picked" : ""}`, "data-handle": c.handle },
    h("label", { class: "chat-open" }, box, ...contactFace(c)));
}

/**
 * A picked contact above the list; its × unpicks.
 * @param {string} handle
 * @param {string} name
 */
function chip(handle, name) {
  return h("span", { class: "chip", "data-handle": handle },
    h("span", { class: "chip-name" }, name),
    h("button", { class: "chip-x", type: "button", "aria-label": t("unpick", name), title: t("unpick", name), onclick: () => toggle(handle) }, icon("close")));
}

/** @param {string} handle */
function toggle(handle) {
  const p = ui.picker;
  if (!p) return;
  p.picked = p.picked.includes(handle) ? p.picked.filter((x) => x !== handle) : [...p.picked, handle];
  renderNewGroup();
}

/** Creates the group (the worker answers `groupCreated`) or adds the picked. */
function submit() {
  const p = ui.picker;
  if (!p || !p.picked.length) return;
  if (p.mode === "create") {
    const name = p.name.trim();
    if (!name) return $input("group-name-input").focus();
    post({ kind: "createGroup", name, members: p.picked });
    $button("group-create").disabled = true;
    return;
  }
  if (!ui.chat) return;
  post({ kind: "changeGroup", chat: ui.chat, op: { op: "add", handles: p.picked } });
  const names = new Map(contacts().map((c) => [c.handle, c.name]));
  toast(t("addingMembers", p.picked.map((h) => names.get(h) ?? h).join(", ")));
  ui.picker = null;
  redraw();
}

export function wireNewGroup() {
  const name = $input("group-name-input");
  name.maxLength = NAME_MAX;
  name.addEventListener("input", () => {
    if (ui.picker) ui.picker.name = name.value;
    renderNewGroup();
  });
  const search = $input("group-search");
  search.addEventListener("input", () => {
    if (ui.picker) ui.picker.query = search.value;
    renderNewGroup();
  });
  $("group-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  // Enter in a box does not create the group half-filled: it moves on.
  name.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      search.focus();
    }
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      /** @type {HTMLInputElement | null} */ ($("group-contacts").querySelector(".pick-box"))?.click();
    }
  });
}
