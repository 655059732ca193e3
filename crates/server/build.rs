//! Embeds the phone web app (`dist/app`, made by `cargo xtask build`) into
//! the server binary: `src/app.rs` includes the directory this script names
//! in `TETHER_APP_DIR`. Without a built web app, a one-page placeholder
//! saying how to build it is embedded instead, so `cargo build -p
//! tether-server` alone still works.
//!
//! Rebuilds: cargo re-runs this script (and so recompiles the server) when
//! anything under `dist/app` changes, or, while there is none, under
//! `dist/`. When `dist/` does not exist yet, this script creates it empty,
//! so that cargo has a directory to watch (a watched path that is missing
//! would make every build rebuild the server).

use std::path::PathBuf;

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether</title>
<body style="font: 16px system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1>Tether</h1>
<p>The web app was not built: run <code>cargo xtask build</code>, then build and start <code>tether-server</code> again.</p>
</body></html>
"#;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = manifest.join("../../dist");
    let app = dist.join("app");
    if !dist.exists() {
        let _ = std::fs::create_dir_all(&dist);
    }
    println!("cargo:rerun-if-changed=build.rs");
    // `dist/app` when it exists (a rebuilt extension in `dist/chrome` is no
    // reason to rebuild the server), else `dist/`, where it will appear.
    let watched = if app.is_dir() { &app } else { &dist };
    println!("cargo:rerun-if-changed={}", watched.display());
    let dir = if app.join("index.html").is_file() {
        app
    } else {
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("app-placeholder");
        std::fs::create_dir_all(&out).expect("OUT_DIR is writable");
        std::fs::write(out.join("index.html"), PLACEHOLDER).expect("OUT_DIR is writable");
        println!(
            "cargo:warning=dist/app is missing: tether-server embeds a placeholder page (run `cargo xtask build` for the web app)"
        );
        out
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    println!("cargo:rustc-env=TETHER_APP_DIR={}", dir.display());
}
