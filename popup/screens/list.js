// @ts-check
// The chat list, in the order the core gives (pinned first, then most
// recent); archived chats in their own fold. A chat shows its unread count
// (a dot when marked as unread) and its draft. While searching, contacts
// without a chat are offered too, messages that match (search.js), and a
// typed handle the core accepts can start a chat.

import { $, $input, avatar, h, label, t } from "../dom.js";
import { listTime } from "../format.js";
import { icon } from "../icons.js";
import { toggleMenu } from "../menu.js";
import { chats, checkedHandle, contacts, findChat, findContact, matches, ui } from "../state.js";
import { openChat, shareTab } from "./chat.js";
import { checkHandle, contactRow, openNewChat, startChat } from "./newchat.js";
import { renderRequestsEntry } from "./requests.js";
import { renderListResults, searchMessages } from "./search.js";

/** @typedef {import("../state.js").ChatSummary} ChatSummary */

export function renderList() {
  const q = ui.query;
  const searching = q.trim() !== "";
  const all = chats();
  const visible = all.filter((c) => (searching || !c.archived) && matches(q, c.name, c.handle, c.lastPreview));
  const archived = all.filter((c) => c.archived);

  /** @type {HTMLElement[]} */
  const people = searching ? contacts().filter((c) => !findChat(c.handle) && matches(q, c.name, c.handle)).map(contactRow) : [];
  if (people.length) people.unshift(h("li", { class: "list-heading", role: "presentation" }, t("contactsLabel")));

  renderRequestsEntry();
  let found = 0;
  keepFocus(() => {
    $("chat-list").replaceChildren(...visible.map(chatRow), ...people);
    $("archived-list").replaceChildren(...archived.map(chatRow));
    found = renderListResults();
  });

  $("archived").hidden = searching || archived.length === 0;
  $("archived-list").hidden = !ui.archivedOpen;
  $("archived-toggle").setAttribute("aria-expanded", String(ui.archivedOpen));
  const archivedUnread = archived.reduce((n, c) => n + c.unread, 0);
  $("archived-count").textContent = String(archivedUnread || archived.length);
  $("archived-count").classList.toggle("has-unread", archivedUnread > 0);

  const empty = $("list-empty");
  empty.replaceChildren();
  empty.hidden = visible.length + people.length + found > 0;
  if (empty.hidden) return;
  if (searching) {
    empty.append(h("p", { class: "muted" }, t("noMatches", q.trim())));
    const handle = checkedHandle(q);
    if (handle) {
      empty.append(
        h("button", { class: "btn primary", type: "button", onclick: () => startChat(handle, findContact(handle)?.name ?? "") },
          icon("newChat"), t("startChatWith", handle)),
      );
    }
  } else {
    empty.append(
      h("div", { class: "empty-art" }, icon("chat")),
      h("p", { class: "strong" }, t(archived.length ? "allArchivedTitle" : "noChatsTitle")),
      h("p", { class: "muted small" }, t("noChatsBody")),
      h("button", { class: "btn primary", type: "button", onclick: openNewChat }, icon("newChat"), t("newChat")),
    );
  }
}

/**
 * Re-renders while keeping keyboard focus on the same chat's row, if it had it.
 * @param {() => void} fn
 */
function keepFocus(fn) {
  const active = document.activeElement;
  const row = /** @type {HTMLElement | null} */ (active?.closest("[data-chat]") ?? null);
  const handle = row?.dataset.chat;
  const cls = active?.classList.contains("row-share") ? ".row-share" : active?.classList.contains("row-more") ? ".row-more" : ".chat-open";
  const inArchive = !!active?.closest("#archived-list");
  fn();
  if (!handle) return;
  const list = inArchive ? "#archived-list" : "#chat-list";
  const again = document.querySelector(`${list} [data-chat="${CSS.escape(handle)}"] ${cls}`)
    ?? document.querySelector(`[data-chat="${CSS.escape(handle)}"] ${cls}`);
  /** @type {HTMLElement | null} */ (again)?.focus({ preventScroll: true });
}

/**
 * One row: avatar, name, time, last message, flags; share and options buttons on hover / focus.
 * @param {ChatSummary} chat
 */
function chatRow(chat) {
  const { name, unread } = chat;
  // Marked as unread with nothing unread: a dot where the count would be.
  const marked = !unread && chat.markedUnread;
  const flags = h("span", { class: "chat-flags" });
  if (chat.pinned) flags.append(h("span", { class: "flag pinned-icon", title: t("pinned") }, icon("pin")));
  if (chat.muted) flags.append(h("span", { class: "flag muted-icon", title: t("muted") }, icon("bellOff")));
  if (unread) flags.append(h("span", { class: `unread${chat.muted ? " muted" : ""}` }, unread > 99 ? "99+" : String(unread)));
  if (marked) flags.append(h("span", { class: `unread dot${chat.muted ? " muted" : ""}`, title: t("markedUnread") }));

  const time = listTime(chat.lastMs);
  const draft = chat.draft.trim();
  const described = [
    name,
    unread ? t("unreadCount", unread) : "",
    marked ? t("markedUnread") : "",
    chat.pinned ? t("pinned") : "",
    chat.muted ? t("muted") : "",
    draft ? t("draftPreview", draft) : chat.lastPreview ? t("lastMessage", chat.lastPreview) : "",
    time,
  ].filter(Boolean).join(", ");
  // An unsent draft shows in place of the last message, marked in the accent colour.
  const preview = draft
    ? h("span", { class: "chat-preview has-draft" }, h("span", { class: "draft-label" }, t("draftLabel")), " ", draft.replace(/\s+/g, " "))
    : h("span", { class: "chat-preview" }, chat.lastPreview || t("noMessagesYet"));

  const open = h("button", { class: "chat-open", type: "button", "aria-label": described, onclick: () => openChat(chat.handle) },
    avatar(name, chat.handle, "", chat.noteToSelf ? "note" : chat.group),
    h("span", { class: "chat-main" },
      h("span", { class: "chat-top" },
        h("span", { class: "chat-name" }, name),
        h("time", { class: "chat-time", datetime: chat.lastMs ? new Date(chat.lastMs).toISOString() : null }, time)),
      h("span", { class: "chat-bottom" }, preview, flags)),
  );
  const share = h("button", { class: "icon-btn row-share", type: "button", onclick: () => shareTab(chat.handle) }, icon("share"));
  label(share, t("sharePageWith", name));
  const more = h("button", { class: "icon-btn row-more", type: "button", "aria-haspopup": "menu", "aria-expanded": "false" }, icon("chevronDown"));
  label(more, t("chatOptionsFor", name));
  more.addEventListener("click", (e) => {
    e.stopPropagation();
    toggleMenu(chat.handle, more);
  });
  return h("li", {
    class: ["chat-row", (unread || marked) && "has-unread", chat.noteToSelf && "is-note", chat.pinned && "is-pinned", chat.muted && "is-muted", chat.archived && "is-archived", chat.group && "is-group"].filter(Boolean).join(" "),
    "data-chat": chat.handle,
  }, open, h("span", { class: "row-actions" }, share, more));
}

export function wireList() {
  const search = $input("search");
  search.addEventListener("input", () => {
    ui.query = search.value;
    checkHandle(search.value);
    searchMessages(search.value, null);
    renderList();
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      const first = $("chat-list").querySelector(".chat-open") ?? $("list-empty").querySelector("button");
      /** @type {HTMLElement | null} */ (first)?.click();
    }
  });
  $("archived-toggle").addEventListener("click", () => {
    ui.archivedOpen = !ui.archivedOpen;
    renderList();
  });
}
