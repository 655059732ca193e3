// @ts-check
// The header bar (title, status pill, buttons) and the error banner, for
// whichever screen is shown.

import { $, label, paintAvatar, t } from "./dom.js";
import { timerLabel } from "./format.js";
import { data, findChat, findContact, isGroup, isNoteToSelf, nameOf, openGroup, ui } from "./state.js";

/** @typedef {import("./state.js").Screen} Screen */

/**
 * @param {Screen} screen
 */
export function renderHeader(screen) {
  const snap = data.snap;
  const state = snap?.state ?? "starting";
  const inner = screen !== "list" && screen !== "starting" && screen !== "setup" && screen !== "unlinked" && screen !== "linking" && screen !== "confirm";
  $("back").hidden = !inner;
  $("logo").hidden = inner;
  $("bar-avatar").hidden = screen !== "chat";
  $("chat-more").hidden = screen !== "chat";
  $("chat-search").hidden = screen !== "chat";
  $("new-chat").hidden = screen !== "list";
  $("settings").hidden = !(screen === "list" || screen === "unlinked");
  $("bar").dataset.screen = screen;
  $("title").removeAttribute("title");

  let title = t("popupTitle");
  let sub = "";
  if (screen === "chat" && ui.chat && isGroup(ui.chat)) {
    // A group: its name, and who is in it ("You, Bob, Carol").
    const group = openGroup();
    title = group?.name ?? nameOf(ui.chat);
    sub = group ? group.members.map((m) => (m.me ? t("you") : m.name)).join(", ") : "";
    const chat = findChat(ui.chat);
    if (chat?.muted) sub = `${t("mutedShort")} · ${sub}`;
    paintAvatar($("bar-avatar"), title, ui.chat, true);
    $("title").title = t("groupInfoOpen");
  } else if (screen === "chat" && ui.chat && isNoteToSelf(ui.chat)) {
    title = nameOf(ui.chat);
    sub = t("noteToSelfSub");
    paintAvatar($("bar-avatar"), title, ui.chat, "note");
  } else if (screen === "chat" && ui.chat) {
    title = nameOf(ui.chat);
    sub = `@${ui.chat}`;
    const chat = findChat(ui.chat);
    if (chat?.muted) sub += ` · ${t("mutedShort")}`;
    if (chat?.archived) sub += ` · ${t("archivedShort")}`;
    paintAvatar($("bar-avatar"), title, ui.chat);
    const contact = findContact(ui.chat);
    if (contact?.verified) sub += ` · ${t("verifiedShort")}`;
    $("title").title = t("contactInfoOpen");
  } else if (screen === "contact") {
    title = t("contactInfoTitle");
  } else if (screen === "group") title = t("groupInfoTitle");
  else if (screen === "newgroup") title = t(ui.picker?.mode === "add" ? "addMembers" : "newGroup");
  else if (screen === "settings") title = t("openSettings");
  else if (screen === "newchat") title = t("newChat");
  else if (screen === "requests") title = t("requestsTitle");
  else if (screen === "list" && snap?.account) sub = `@${snap.account.handle}`;
  $("title").textContent = title;
  $("subtitle").textContent = sub;
  $("subtitle").hidden = !sub;
  // Disappearing messages on: a small timer beside the chat's name.
  const secs = screen === "chat" && ui.chat ? findChat(ui.chat)?.disappearSecs ?? 0 : 0;
  const timer = $("bar-timer");
  timer.hidden = !secs;
  if (secs) label(timer, t("disappearsAfter", timerLabel(secs)));

  // Status pill: link state before linking, connection once linked (subtle when fine).
  const pill = $("pill");
  /** @type {string} */
  let pillState = state;
  let text = "";
  if (state === "starting") text = t("stateStarting");
  else if (state === "unlinked") text = t("stateNotLinkedTitle");
  else if (state === "linking") text = t("linkingTitle");
  else if (state === "linked" && snap) {
    pillState = snap.connection;
    text = { offline: t("connOffline"), connecting: t("connConnecting"), connected: t("connConnected") }[snap.connection];
  }
  pill.dataset.state = pillState;
  $("pill-text").textContent = text;
  pill.title = text;
  pill.hidden =
    state === "setup" ||
    (state === "linked" && pillState === "connected" && screen !== "list") ||
    (screen === "settings" && state !== "linked");
}

/** The worker's last error, until it clears or the user closes it. */
export function renderBanner() {
  const err = data.snap?.error;
  const show = !!err && err !== ui.dismissedError && ui.screen !== "starting";
  $("banner").hidden = !show;
  if (show) $("banner-text").textContent = err ?? "";
}

/**
 * Before any snapshot: the worker answered with an error (the core didn't start).
 * @param {string} message
 */
export function renderStartError(message) {
  $("view").dataset.state = "error";
  $("view").removeAttribute("aria-busy");
  $("starting-spinner").hidden = true;
  $("starting-text").hidden = true;
  $("start-error").hidden = false;
  $("start-error-text").textContent = message;
  $("pill").dataset.state = "error";
  $("pill-text").textContent = "!";
}
