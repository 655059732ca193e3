// @ts-check
// Group info (from a group chat's header): the group's name and members
// with their admin badges, as the core last sent them with the chat's
// history. Admins rename, add and remove members and make or unmake
// admins; anyone leaves. Every change is a command (`changeGroup`) the
// core checks against the group's rules and makes once the server took
// it; what shows is always the core's group, never a guess of the view.

import { $, $button, $input, avatar, h, paintAvatar, t, toast } from "../dom.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { openGroup, redraw, ui } from "../state.js";
import { openPicker } from "./newgroup.js";

/** @typedef {import("../state.js").GroupInfo} GroupInfo */
/** @typedef {import("../../common/messages.js").GroupOp} GroupOp */
/** @typedef {GroupInfo["members"][number]} Member */

/** Opens the open group chat's info. */
export function openGroupInfo() {
  if (!ui.chat) return;
  ui.contactOpen = true;
  ui.group = { member: null, renaming: false, leaving: false };
  redraw();
}

/**
 * Asks the core for a change of the open group.
 * @param {GroupOp} op
 * @param {string} done what the toast says
 */
function change(op, done) {
  if (!ui.chat) return;
  post({ kind: "changeGroup", chat: ui.chat, op });
  ui.group.member = null;
  toast(done);
}

export function renderGroup() {
  const g = openGroup();
  const view = $("screen-group");
  view.setAttribute("aria-busy", g ? "false" : "true");
  if (!g) return;
  paintAvatar($("group-avatar"), g.name, g.chat, true);
  $("group-name").textContent = g.name;
  $("group-count").textContent = t("memberCount", g.members.length);
  $button("group-rename").hidden = !g.amAdmin || ui.group.renaming;
  $("group-rename-form").hidden = !g.amAdmin || !ui.group.renaming;
  $("group-left").hidden = g.amMember;
  $button("group-add").hidden = !g.amAdmin;
  $("group-members").replaceChildren(...g.members.map((m) => memberRow(g, m)));
  $("group-leave-area").hidden = !g.amMember;
  $button("group-leave").hidden = ui.group.leaving;
  $("group-leave-confirm").hidden = !ui.group.leaving;
}

/**
 * One member: avatar, name (or "You"), handle, an admin badge; for an
 * admin, the actions on the other members behind a button.
 * @param {GroupInfo} g
 * @param {Member} m
 */
function memberRow(g, m) {
  const actionable = g.amAdmin && !m.me;
  const open = actionable && ui.group.member === m.handle;
  const row = h("li", { class: "member-row", "data-handle": m.handle },
    h("div", { class: "member-main" },
      avatar(m.me ? m.handle : m.name, m.handle, "sm"),
      h("span", { class: "member-names" },
        h("span", { class: "member-name" }, m.me ? t("you") : m.name),
        h("span", { class: "muted small" }, `@${m.handle}`)),
      m.admin ? h("span", { class: "admin-badge" }, icon("shield"), t("adminBadge")) : null,
      actionable ? moreButton(m, open) : null));
  if (open) {
    row.append(h("div", { class: "member-actions" },
      h("button", {
        class: "btn small", type: "button", "data-action": m.admin ? "unadmin" : "admin",
        onclick: () => change({ op: "set_admin", handle: m.handle, admin: !m.admin }, t(m.admin ? "unmakingAdmin" : "makingAdmin", m.name)),
      }, icon("shield"), t(m.admin ? "dismissAdmin" : "makeAdmin")),
      h("button", {
        class: "btn small danger-ghost", type: "button", "data-action": "remove",
        onclick: () => change({ op: "remove", handles: [m.handle] }, t("removingMember", m.name)),
      }, icon("userMinus"), t("removeMember"))));
  }
  return row;
}

/**
 * @param {Member} m
 * @param {boolean} open
 */
function moreButton(m, open) {
  const b = h("button", {
    class: "icon-btn member-more", type: "button", "aria-expanded": String(open), "aria-label": t("memberOptionsFor", m.name), title: t("memberOptionsFor", m.name),
    onclick: () => {
      ui.group.member = open ? null : m.handle;
      renderGroup();
    },
  }, icon("more"));
  return b;
}

export function wireGroup() {
  $("group-rename").addEventListener("click", () => {
    ui.group.renaming = true;
    renderGroup();
    const input = $input("group-rename-input");
    input.value = openGroup()?.name ?? "";
    input.focus();
    input.select();
  });
  $("group-rename-cancel").addEventListener("click", () => {
    ui.group.renaming = false;
    renderGroup();
  });
  $("group-rename-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $input("group-rename-input").value.trim();
    const g = openGroup();
    ui.group.renaming = false;
    if (name && g && name !== g.name) change({ op: "rename", name }, t("renamingGroup", name));
    renderGroup();
  });
  $("group-add").addEventListener("click", () => openPicker("add"));
  $("group-leave").addEventListener("click", () => {
    ui.group.leaving = true;
    renderGroup();
  });
  $("group-leave-cancel").addEventListener("click", () => {
    ui.group.leaving = false;
    renderGroup();
  });
  $("group-leave-yes").addEventListener("click", () => {
    ui.group.leaving = false;
    change({ op: "leave" }, t("leavingGroup", openGroup()?.name ?? ""));
    renderGroup();
  });
}
