// @ts-check
// What the popup and the phone web app (app/chats.js) share of the chat
// screens: wiring their controls, and applying the replies that only those
// screens use. Each host handles the rest (snapshots, server checks,
// errors) its own way.

import { $ } from "./dom.js";
import { renderBanner, renderHeader } from "./header.js";
import { goBack, onKeydown } from "./keys.js";
import { toggleMenu, wireMenu } from "./menu.js";
import { openChat, renderChat, wireChat } from "./screens/chat.js";
import { onProgress } from "./screens/files.js";
import { onContactInfo, openContact, renderContact, wireContact } from "./screens/contact.js";
import { openGroupInfo, renderGroup, wireGroup } from "./screens/group.js";
import { openPicker, renderNewGroup, wireNewGroup } from "./screens/newgroup.js";
import { renderList, wireList } from "./screens/list.js";
import { renderRequests, wireRequests } from "./screens/requests.js";
import { openNewChat, renderNewChat, wireNewChat } from "./screens/newchat.js";
import { openSettings, renderSettings, wireSettings } from "./screens/settings.js";
import { onSearchResults } from "./screens/search.js";
import { data, isGroup, isNoteToSelf, ui } from "./state.js";
import { post } from "./port.js";

/** @typedef {import("./state.js").Screen} Screen */
/** @typedef {import("../common/messages.js").WorkerMessage} WorkerMessage */
/** @typedef {Extract<WorkerMessage, { kind: "chat" | "contactInfo" | "handleChecked" | "progress" | "groupCreated" | "receipts" | "searchResults" }>} ChatReply */

/** The chat screen the view state calls for, once there is an account. @returns {Screen} */
export function chatScreen() {
  if (ui.settings) return "settings";
  if (ui.picker) return "newgroup";
  if (ui.chat && ui.contactOpen) return isGroup(ui.chat) ? "group" : "contact";
  if (ui.chat) return "chat";
  if (ui.newChat) return "newchat";
  if (ui.requests) return "requests";
  return "list";
}

/** How each chat screen paints. @type {Partial<Record<Screen, () => void>>} */
export const CHAT_RENDER = {
  list: renderList,
  chat: renderChat,
  newchat: renderNewChat,
  settings: renderSettings,
  contact: renderContact,
  group: renderGroup,
  newgroup: renderNewGroup,
  requests: renderRequests,
};

/** Wires the header, the banner and every chat screen (list, chat, new chat, settings, contact, requests). */
export function wireChatViews() {
  document.addEventListener("keydown", onKeydown);
  $("back").addEventListener("click", goBack);
  $("settings").addEventListener("click", openSettings);
  $("new-chat").addEventListener("click", openNewChat);
  $("chat-more").addEventListener("click", (e) => {
    e.stopPropagation();
    if (ui.chat) toggleMenu(ui.chat, $("chat-more"));
  });
  $("banner-close").addEventListener("click", () => {
    ui.dismissedError = data.snap?.error ?? null;
    renderBanner();
  });
  wireList();
  wireMenu();
  wireChat();
  wireNewChat();
  wireSettings();
  wireContact();
  wireGroup();
  wireNewGroup();
  $("new-group").addEventListener("click", () => openPicker("create"));
  $("note-to-self").addEventListener("click", () => {
    const me = data.snap?.account?.handle;
    if (me) openChat(me);
  });
  // The chat header opens the contact's or the group's info (the note to self has none).
  for (const id of ["bar-avatar", "title"]) {
    $(id).addEventListener("click", () => {
      if (ui.screen !== "chat" || isNoteToSelf(ui.chat)) return;
      if (isGroup(ui.chat)) openGroupInfo();
      else openContact();
    });
  }
  wireRequests();
}

/**
 * Applies a reply meant for the chat screens: a chat's messages, a
 * contact's info, a handle check. False for the kinds the host handles.
 * @param {WorkerMessage} msg
 * @returns {msg is ChatReply}
 */
export function applyChatMessage(msg) {
  switch (msg.kind) {
    case "chat":
      if (msg.chat === ui.chat) {
        data.history = { chat: msg.chat, messages: msg.messages, total: msg.total, group: msg.group, actions: msg.actions };
        // A receipt may have come: "read by" asks again.
        if (ui.receiptsFor) post({ kind: "messageReceipts", chat: msg.chat, id: ui.receiptsFor });
        if (ui.screen === "chat") {
          renderChat();
          if (msg.messages.length) performance.mark(`tether:chat:${msg.chat}`); // for `cargo xtask bench history`
        } else if (ui.screen === "group") renderGroup();
        else if (ui.screen === "newgroup") renderNewGroup();
        renderHeader(ui.screen); // a group's name and members
      }
      return true;
    case "receipts":
      if (msg.chat === ui.chat && msg.id === ui.receiptsFor) {
        data.receipts = { chat: msg.chat, id: msg.id, receipts: msg.receipts };
        if (ui.screen === "chat") renderChat();
      }
      return true;
    case "searchResults":
      onSearchResults(msg);
      return true;
    case "groupCreated":
      ui.picker = null;
      openChat(msg.chat);
      return true;
    case "contactInfo":
      onContactInfo(msg.chat, msg.info);
      return true;
    case "progress":
      onProgress(msg.progress);
      return true;
    case "handleChecked": {
      // Only the answer for the text still in the box counts.
      const current = ui.screen === "newchat" ? ui.contactQuery : ui.query;
      if (msg.text === current) {
        ui.handleCheck = msg;
        if (ui.screen === "newchat") renderNewChat();
        else if (ui.screen === "list") renderList();
      }
      return true;
    }
    default:
      return false;
  }
}
