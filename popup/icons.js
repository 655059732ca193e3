// @ts-check
// The popup's icons: 24×24 stroke icons drawn as inline SVG. "c:x,y,r" is a
// circle, "r:x,y,w,h,rx" a rectangle, anything else a path. Icons whose name
// ends in "Fill" are filled instead of stroked.

export const ICONS = /** @type {const} */ ({
  back: ["M19 12H5", "m12 19-7-7 7-7"],
  settings: [
    "M12.22 2h-.44a2 2 0 0 0-2 2v.18a2 2 0 0 1-1 1.73l-.43.25a2 2 0 0 1-2 0l-.15-.08a2 2 0 0 0-2.73.73l-.22.38a2 2 0 0 0 .73 2.73l.15.1a2 2 0 0 1 1 1.72v.51a2 2 0 0 1-1 1.74l-.15.09a2 2 0 0 0-.73 2.73l.22.38a2 2 0 0 0 2.73.73l.15-.08a2 2 0 0 1 2 0l.43.25a2 2 0 0 1 1 1.73V20a2 2 0 0 0 2 2h.44a2 2 0 0 0 2-2v-.18a2 2 0 0 1 1-1.73l.43-.25a2 2 0 0 1 2 0l.15.08a2 2 0 0 0 2.73-.73l.22-.39a2 2 0 0 0-.73-2.73l-.15-.08a2 2 0 0 1-1-1.74v-.5a2 2 0 0 1 1-1.74l.15-.09a2 2 0 0 0 .73-2.73l-.22-.38a2 2 0 0 0-2.73-.73l-.15.08a2 2 0 0 1-2 0l-.43-.25a2 2 0 0 1-1-1.73V4a2 2 0 0 0-2-2z",
    "c:12,12,3",
  ],
  newChat: ["M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z", "M12 7v6", "M9 10h6"],
  search: ["c:11,11,7", "m20 20-4.2-4.2"],
  more: ["c:12,5,1", "c:12,12,1", "c:12,19,1"],
  pin: [
    "M12 17v5",
    "M9 10.76a2 2 0 0 1-1.11 1.79l-1.78.9A2 2 0 0 0 5 15.24V16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-.76a2 2 0 0 0-1.11-1.79l-1.78-.9A2 2 0 0 1 15 10.76V7a1 1 0 0 1 1-1 2 2 0 0 0 0-4H8a2 2 0 0 0 0 4 1 1 0 0 1 1 1z",
  ],
  bellOff: [
    "M8.7 3A6 6 0 0 1 18 8a21.3 21.3 0 0 0 .6 5",
    "M17 17H3s3-2 3-9a4.67 4.67 0 0 1 .3-1.7",
    "M10.3 21a1.94 1.94 0 0 0 3.4 0",
    "m2 2 20 20",
  ],
  archive: ["r:2,3,20,5,1", "M4 8v11a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8", "M10 12h4"],
  share: ["M4 12v7a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-7", "m16 6-4-4-4 4", "M12 2v13"],
  sendFill: ["M3.4 20.4 21 12 3.4 3.6 3.4 10.2 15 12 3.4 13.8z"],
  chevronDown: ["m6 9 6 6 6-6"],
  check: ["M20 6 9 17l-5-5"],
  checks: ["M17 7 7.5 16.5 3 12", "m22 7-9.5 9.5-1.2-1.2"],
  clock: ["c:12,12,9", "M12 7v5l3 2"],
  alert: ["m21.73 18-8-14a2 2 0 0 0-3.48 0l-8 14A2 2 0 0 0 4 21h16a2 2 0 0 0 1.73-3", "M12 9v4", "M12 17h.01"],
  paperclip: ["m21.44 11.05-9.19 9.19a6 6 0 0 1-8.49-8.49l8.57-8.57A4 4 0 1 1 18 8.84l-8.59 8.57a2 2 0 0 1-2.83-2.83l8.49-8.48"],
  file: ["M15 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V7z", "M14 2v4a2 2 0 0 0 2 2h4", "M8 13h8", "M8 17h5"],
  image: ["r:3,3,18,18,2", "c:9,9,2", "m21 15-3.09-3.09a2 2 0 0 0-2.82 0L6 21"],
  video: ["r:2,6,14,12,2", "m16 13 5.2 3.5a.5.5 0 0 0 .8-.4V7.9a.5.5 0 0 0-.8-.4L16 10.5"],
  mic: ["r:9,2,6,12,3", "M19 10v1a7 7 0 0 1-14 0v-1", "M12 18v4"],
  playFill: ["M7 4.5v15a1 1 0 0 0 1.5.86l12.2-7.5a1 1 0 0 0 0-1.72L8.5 3.64A1 1 0 0 0 7 4.5z"],
  pauseFill: ["M6 4h4v16H6z", "M14 4h4v16h-4z"],
  lock: ["r:4,11,16,10,2", "M8 11V7a4 4 0 0 1 8 0v4"],
  close: ["M18 6 6 18", "m6 6 12 12"],
  refresh: ["M21 12a9 9 0 1 1-2.64-6.36L21 8", "M21 3v5h-5"],
  logout: ["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "m16 17 5-5-5-5", "M21 12H9"],
  server: ["r:3,3,18,7,2", "r:3,14,18,7,2", "M7 6.5h.01", "M7 17.5h.01"],
  link: [
    "M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71",
    "M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71",
  ],
  userPlus: ["M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2", "c:9,7,4", "M19 8v6", "M22 11h-6"],
  chat: ["M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"],
  users: ["M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2", "c:9,7,4", "M22 21v-2a4 4 0 0 0-3-3.87", "M16 3.13a4 4 0 0 1 0 7.75"],
  userMinus: ["M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2", "c:9,7,4", "M22 11h-6"],
  pencil: ["M21.17 6.81a1 1 0 0 0-3.99-3.99L3.84 16.17a2 2 0 0 0-.5.83l-1.32 4.35a.5.5 0 0 0 .62.62l4.35-1.32a2 2 0 0 0 .83-.5z", "m15 5 4 4"],
  timer: ["M10 2h4", "m12 14 3-3", "c:12,14,8"],
  bookmark: ["m19 21-7-4-7 4V5a2 2 0 0 1 2-2h10a2 2 0 0 1 2 2v16z"],
  unreadDot: ["M11.7 3H5a2 2 0 0 0-2 2v16l4-4h12a2 2 0 0 0 2-2v-2.7", "c:18,6,3"],
  reply: ["m9 17-5-5 5-5", "M20 18v-2a4 4 0 0 0-4-4H4"],
  smilePlus: ["M22 11v1a10 10 0 1 1-9-10", "M8 14s1.5 2 4 2 4-2 4-2", "M9 9h.01", "M15 9h.01", "M16 5h6", "M19 2v6"],
  trash: ["M3 6h18", "M19 6v14a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V6", "M8 6V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2"],
  ban: ["c:12,12,10", "m4.9 4.9 14.2 14.2"],
  shield: ["M20 13c0 5-3.5 7.5-7.66 8.95a1 1 0 0 1-.67-.01C7.5 20.5 4 18 4 13V6a1 1 0 0 1 1-1c2 0 4.5-1.2 6.24-2.72a1.17 1.17 0 0 1 1.52 0C14.51 3.81 17 5 19 5a1 1 0 0 1 1 1z"],
});

/** @typedef {keyof typeof ICONS} IconName */

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Whether a string names an icon (for `data-icon` attributes in the markup).
 * @param {string | undefined} name
 * @returns {name is IconName}
 */
export function isIcon(name) {
  return name !== undefined && Object.hasOwn(ICONS, name);
}

/**
 * An SVG element with the given attributes.
 * @param {string} tag
 * @param {Record<string, string>} attrs
 */
function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/**
 * An inline SVG icon, hidden from assistive technology (its button carries the name).
 * @param {IconName} name
 * @returns {SVGSVGElement}
 */
export function icon(name) {
  const filled = name.endsWith("Fill");
  const svg = /** @type {SVGSVGElement} */ (svgEl("svg", {
    viewBox: "0 0 24 24",
    class: `icon icon-${name}`,
    "aria-hidden": "true",
    focusable: "false",
    fill: filled ? "currentColor" : "none",
  }));
  if (!filled) {
    svg.setAttribute("stroke", "currentColor");
    svg.setAttribute("stroke-width", "2");
    svg.setAttribute("stroke-linecap", "round");
    svg.setAttribute("stroke-linejoin", "round");
  }
  for (const part of ICONS[name]) {
    if (part.startsWith("c:")) {
      const [cx, cy, r] = part.slice(2).split(",");
      svg.append(svgEl("circle", { cx, cy, r }));
    } else if (part.startsWith("r:")) {
      const [x, y, width, height, rx] = part.slice(2).split(",");
      svg.append(svgEl("rect", { x, y, width, height, rx }));
    } else {
      svg.append(svgEl("path", { d: part }));
    }
  }
  return svg;
}
