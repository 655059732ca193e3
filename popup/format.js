// @ts-check
// Times and dates as the popup shows them, in the browser's language.

import { t } from "./dom.js";
import { uiLanguage } from "./i18n.js";

export const locale = uiLanguage();
const fmtTime = new Intl.DateTimeFormat(locale, { hour: "numeric", minute: "2-digit" });
const fmtWeekday = new Intl.DateTimeFormat(locale, { weekday: "short" });
const fmtDate = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" });
const fmtDateYear = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", year: "numeric" });
const fmtDay = new Intl.DateTimeFormat(locale, { weekday: "long", day: "numeric", month: "long" });
const fmtFull = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });

/**
 * Local midnight of the day `ms` falls on.
 * @param {number} ms
 */
export function startOfDay(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/**
 * How many calendar days ago `ms` was (0 today, 1 yesterday).
 * @param {number} ms
 */
function daysAgo(ms) {
  return Math.round((startOfDay(Date.now()) - startOfDay(ms)) / 86400000);
}

/**
 * The chat list's time column: time today, "Yesterday", weekday this week, else the date.
 * @param {number} ms
 */
export function listTime(ms) {
  if (!ms) return "";
  const ago = daysAgo(ms);
  if (ago <= 0) return fmtTime.format(ms);
  if (ago === 1) return t("yesterday");
  if (ago < 7) return fmtWeekday.format(ms);
  return new Date(ms).getFullYear() === new Date().getFullYear() ? fmtDate.format(ms) : fmtDateYear.format(ms);
}

/**
 * A day separator in a chat.
 * @param {number} ms
 */
export function dayLabel(ms) {
  const ago = daysAgo(ms);
  if (ago <= 0) return t("today");
  if (ago === 1) return t("yesterday");
  return fmtDay.format(ms);
}

/**
 * A message's time of day.
 * @param {number} ms
 */
export const timeOfDay = (ms) => fmtTime.format(ms);

/**
 * Date and time, for a tooltip.
 * @param {number} ms
 */
export const fullTime = (ms) => fmtFull.format(ms);

/**
 * A countdown: m:ss.
 * @param {number} ms
 */
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * A disappearing-messages timer in words ("Off", "24 hours", "7 days", "90 days").
 * @param {number} seconds
 */
export function timerLabel(seconds) {
  /** @type {Record<number, string>} */
  const keys = { 0: "timerOff", 86400: "timer24h", 604800: "timer7d", 7776000: "timer90d" };
  const key = keys[seconds];
  if (key) return t(key);
  return seconds % 86400 === 0 ? t("timerDays", seconds / 86400) : t("timerHours", Math.round(seconds / 3600));
}
