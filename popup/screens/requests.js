// @ts-check
// Message requests: messages from people who are not contacts. The chat
// list shows one "Message requests (n)" entry; this screen lists them, each
// named by its handle only (never a name the sender chose), with how many
// messages it sent and the first one, and four answers: accept, delete,
// block, report spam. Every answer is a core command; nothing is decided here.

import { $, avatar, h, label, t } from "../dom.js";
import { listTime } from "../format.js";
import { post } from "../port.js";
import { redraw, requests, ui } from "../state.js";

/** @typedef {import("../../common/messages.js").RequestAction} RequestAction */
/** @typedef {ReturnType<typeof requests>[number]} RequestSummary */

export function openRequests() {
  ui.requests = true;
  redraw();
}

/** The chat list's entry: shown only while there are requests. */
export function renderRequestsEntry() {
  const n = requests().length;
  const entry = $("requests-entry");
  entry.hidden = n === 0;
  $("requests-entry-text").textContent = t("requestsEntry", n);
}

export function renderRequests() {
  const list = requests();
  $("request-list").replaceChildren(...list.map(requestRow));
  const empty = $("requests-empty");
  empty.hidden = list.length > 0;
  empty.replaceChildren(h("p", { class: "muted" }, t("requestsEmpty")));
}

/**
 * One request: the handle, how many, when, the first message, the answers.
 * @param {RequestSummary} r
 */
function requestRow(r) {
  const who = `@${r.handle}`;
  const count = r.count === 1 ? t("requestOneMessage") : t("requestMessages", r.count);
  /**
   * @param {RequestAction} action
   * @param {string} text
   * @param {string} cls
   */
  const answer = (action, text, cls) =>
    h("button", { class: `btn small ${cls}`, type: "button", "data-action": action, onclick: () => post({ kind: "answerRequest", handle: r.handle, action }) }, text);
  const report = answer("report", t("requestReport"), "danger");
  label(report, t("requestReportHelp"));
  return h("li", { class: "request-row", "data-request": r.handle, "aria-label": t("requestFrom", who) },
    h("div", { class: "request-head" },
      avatar(r.handle, r.handle),
      h("span", { class: "chat-main" },
        h("span", { class: "chat-top" },
          h("span", { class: "chat-name" }, who),
          h("time", { class: "chat-time", datetime: new Date(r.lastMs).toISOString() }, listTime(r.lastMs))),
        h("span", { class: "chat-bottom" },
          h("span", { class: "chat-preview" }, r.firstPreview),
          h("span", { class: "request-count" }, count)))),
    h("div", { class: "request-actions" },
      answer("accept", t("requestAccept"), "primary"),
      answer("delete", t("requestDelete"), ""),
      answer("block", t("requestBlock"), ""),
      report));
}

export function wireRequests() {
  $("requests-entry").addEventListener("click", openRequests);
}
