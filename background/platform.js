// @ts-check
// Which browser on which OS this is: the device's platform id and its
// default name in the primary's device list.

/**
 * @returns {{ id: string, name: string }} e.g. `chrome/linux`, "Chrome on Linux"
 */
export function platform() {
  /** @type {{ userAgentData?: { platform?: string } }} */
  const nav = /** @type {any} */ (navigator);
  const os = nav.userAgentData?.platform || navigator.platform || "";
  const osName = /mac/i.test(os) ? "macOS" : /win/i.test(os) ? "Windows" : /cros/i.test(os) ? "ChromeOS" : /android/i.test(os) ? "Android" : "Linux";
  const ua = navigator.userAgent;
  const browser = /firefox/i.test(ua) ? "Firefox" : /edg\//i.test(ua) ? "Edge" : "Chrome";
  return { id: `${browser.toLowerCase()}/${osName.toLowerCase()}`, name: `${browser} on ${osName}` };
}
