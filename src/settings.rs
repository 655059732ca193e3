//! The extension's own settings: which server, whether the user set it up,
//! notifications on or off, this device's name. Kept by the core (it
//! decides with them) and persisted through the same writes as the engine's
//! state, under the storage key `settings`.

use serde::{Deserialize, Serialize};
use tsify::Tsify;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The server this browser links through (http(s)://host:port).
    pub server: String,
    /// The user confirmed a server on the first-run screen.
    pub configured: bool,
    /// Show a notification for each incoming message.
    pub notifications: bool,
    /// What the primary's device list calls this browser.
    pub device_name: String,
    /// The name the person gave at registration (the web app, a primary).
    pub display_name: String,
}

/// Settings as stored; fields missing in an older record take the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSettings {
    server: Option<String>,
    configured: Option<bool>,
    notifications: Option<bool>,
    device_name: Option<String>,
    display_name: Option<String>,
}

/// Longest device name kept (characters).
pub const DEVICE_NAME_MAX: usize = 64;

impl Settings {
    /// The defaults (`server` from the build, `device_name` from the
    /// browser and OS), overridden by what was stored.
    pub fn new(default_server: &str, default_name: &str, stored: StoredSettings) -> Self {
        Settings {
            server: stored.server.unwrap_or_else(|| default_server.to_string()),
            configured: stored.configured.unwrap_or(false),
            notifications: stored.notifications.unwrap_or(true),
            device_name: stored.device_name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| default_name.to_string()),
            display_name: stored.display_name.unwrap_or_default(),
        }
    }
}

/// A server address as typed: trimmed, without trailing slashes.
pub fn clean_server(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// The WebSocket URL of a server: `http(s)://host` → `ws(s)://host/v1/ws`.
pub fn ws_url(server: &str) -> String {
    let s = clean_server(server);
    let s = match s.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some(("http", rest)) => format!("ws://{rest}"),
        _ => s,
    };
    format!("{s}/v1/ws")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_become_websocket_urls() {
        assert_eq!(ws_url("http://127.0.0.1:7780/"), "ws://127.0.0.1:7780/v1/ws");
        assert_eq!(ws_url(" https://tether.example "), "wss://tether.example/v1/ws");
    }

    #[test]
    fn stored_settings_override_the_defaults() {
        let s = Settings::new("http://d", "Chrome on Linux", StoredSettings::default());
        assert_eq!((s.server.as_str(), s.configured, s.notifications, s.device_name.as_str()), ("http://d", false, true, "Chrome on Linux"));
        let stored = StoredSettings { server: Some("http://x".into()), configured: Some(true), notifications: Some(false), device_name: Some(" ".into()), display_name: None };
        let s = Settings::new("http://d", "Chrome on Linux", stored);
        assert_eq!((s.server.as_str(), s.configured, s.notifications, s.device_name.as_str()), ("http://x", true, false, "Chrome on Linux"));
    }
}
