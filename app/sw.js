// The web app's service worker: serves the app shell offline. The shell's
// files and a version that changes with any of them are in
// app/precache.js (written by `cargo xtask build`); a new version fills a
// new cache and drops the old one. The socket (/v1/ws) and /healthz are
// never cached. A notification click opens (or focuses) the app on its chat.
// Not type-checked by tsconfig.json: a worker's globals differ from a page's.
/* global self, caches, clients */
importScripts("app/precache.js");

const { version, files } = self.PRECACHE;
const CACHE = `tether-shell-${version}`;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      // `reload`: straight from the server, never from the HTTP cache.
      .then((cache) => cache.addAll(files.map((f) => new Request(f, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("tether-shell-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/v1/") || url.pathname === "/healthz" || url.pathname === "/metrics") return;
  // The shell from the cache (it works offline); anything else from the network.
  const path = url.pathname === "/" ? "./" : `.${url.pathname}`;
  event.respondWith(caches.match(path, { cacheName: CACHE, ignoreSearch: true }).then((hit) => hit || fetch(event.request)));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const chat = event.notification.data && event.notification.data.chat;
  const target = chat ? `/#chat=${encodeURIComponent(chat)}` : "/";
  event.waitUntil(
    clients.matchAll({ type: "window", includeUncontrolled: true }).then((open) => {
      for (const c of open) {
        if ("focus" in c) {
          c.navigate(target).catch(() => {});
          return c.focus();
        }
      }
      return clients.openWindow(target);
    }),
  );
});
