// @ts-check
// An own message's ticks: ✓ sent, ✓✓ delivered, blue ✓✓ read (in a
// group: by every member, as the core sums it up), a clock while
// pending, a warning sign when it will not be sent.

import { h, label, t } from "../dom.js";
import { icon } from "../icons.js";

/** @typedef {import("../state.js").ChatMessage["status"]} Status */

/** @type {Record<Status, { icon: "alert" | "clock" | "check" | "checks", key: string }>} */
const TICKS = {
  failed: { icon: "alert", key: "statusFailed" },
  pending: { icon: "clock", key: "statusPending" },
  sent: { icon: "check", key: "statusSent" },
  delivered: { icon: "checks", key: "statusDelivered" },
  read: { icon: "checks", key: "statusRead" },
};

/** @param {Status} status */
export function ticks(status) {
  const tick = TICKS[status] ?? TICKS.pending;
  const el = h("span", { class: `ticks ${status}`, "data-status": status, role: "img" }, icon(tick.icon));
  label(el, t(tick.key));
  return el;
}
