//! `cargo xtask build`: the extension into `dist/chrome` and `dist/firefox`
//! (optimised wasm), the phone web app into `dist/app` (the same core with
//! the feature `app`; tether-server embeds it), plus release binaries of
//! `tether-server` and `tether` (built after the web app, so the server
//! embeds the fresh one). `--extension`: the extension only; `--app`: the
//! web app only.

use crate::setup::{self, BuildTools};
use crate::util::{self, Result, Timer, copy_dir, root, target_dir};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The server a built extension uses until the user picks another.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7780";

/// Everything of the source tree that ships in the extension, besides the
/// manifest and the generated `wasm/` directory.
const EXTENSION_DIRS: &[&str] = &["background", "popup", "common", "options", "icons", "_locales"];

/// Gecko id of the Firefox build.
const GECKO_ID: &str = "tether@tether.chat";

/// The toolbar button's key in Firefox (Chrome's, Ctrl+Shift+Y, is Firefox's Downloads).
const FIREFOX_ACTION_KEY: &str = "Ctrl+Shift+L";

pub fn run(args: &[String]) -> Result {
    let only_extension = args.iter().any(|a| a == "--extension");
    let only_app = args.iter().any(|a| a == "--app");
    let args: Vec<String> = args.iter().filter(|a| *a != "--extension" && *a != "--app").cloned().collect();
    let server = server_arg(&args)?;
    // The build's tools only: no browser, no test tool (docs/build-firefox.md).
    let tools = setup::build_tools()?;
    if !only_app {
        extension(&tools, &server)?;
    }
    if !only_extension {
        app(&tools)?;
    }
    if only_extension || only_app { Ok(()) } else { native_release() }
}

/// `--server URL` from the arguments, or the default.
pub fn server_arg(args: &[String]) -> Result<String> {
    let mut it = args.iter();
    let mut server = DEFAULT_SERVER.to_string();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--server" => server = it.next().ok_or("--server needs a URL")?.clone(),
            "--browser" | "--cluster" => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(format!("--server must be an http:// or https:// URL, not `{server}`"));
    }
    Ok(server.trim_end_matches('/').to_string())
}

pub fn dist() -> PathBuf {
    root().join("dist")
}

/// Builds the optimised wasm core and lays out both browsers' extensions.
pub fn extension(tools: &BuildTools, server: &str) -> Result {
    let _t = Timer::start("extension build");
    let wasm = wasm_core(tools, Flavour::Extension, &Tree::here())?;
    for browser in ["chrome", "firefox"] {
        lay_out(tools, &wasm, &root(), &dist().join(browser), browser, server)?;
    }
    let wasm_file = wasm.join(CORE_WASM);
    let bytes = std::fs::read(&wasm_file).map_err(|e| e.to_string())?;
    eprintln!(
        "xtask: wasm core {} KB, {} KB gzipped -> dist/chrome, dist/firefox",
        bytes.len() / 1024,
        gzipped_len(&bytes) / 1024
    );
    Ok(())
}

/// One browser's extension in `out` (emptied first): the files of `source`
/// (a checkout), the wasm core from `wasm`, the popup's stylesheets
/// inlined, the default server written, the scripts bundled, the manifest.
pub fn lay_out(tools: &BuildTools, wasm: &Path, source: &Path, out: &Path, browser: &str, server: &str) -> Result {
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| format!("clean {}: {e}", out.display()))?;
    }
    for dir in EXTENSION_DIRS {
        copy_dir(&source.join(dir), &out.join(dir))?;
    }
    copy_dir(wasm, &out.join("wasm"))?;
    for page in INLINED_STYLESHEETS {
        inline_page_stylesheets(&out.join(page))?;
    }
    std::fs::write(
        out.join("background/config.js"),
        format!("// Written by `cargo xtask build`.\nexport const DEFAULT_SERVER = {};\n", json!(server)),
    )
    .map_err(|e| e.to_string())?;
    bundle_scripts(&tools.esbuild, out, &EXTENSION_SCRIPTS)?;
    let manifest = manifest(source, browser)?;
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest).unwrap())
        .map_err(|e| e.to_string())
}

/// The extension's pages whose stylesheets the build writes into the page
/// itself. A stylesheet in the head holds the first paint until it has
/// arrived, and each one is a request to the browser process (which reads
/// the extension's files): with the popup's ten, its first paint came
/// 140-170 ms (p50) after it opened on a busy 2-core machine, inlined
/// about 105 ms, where a page holding one word paints at about 85 ms
/// (`cargo xtask bench extension`). The sources keep one stylesheet per
/// screen.
const INLINED_STYLESHEETS: &[&str] = &["popup/popup.html"];

/// Rewrites the page at `page` with its stylesheets inlined
/// ([`inline_stylesheets`]), each read from beside the page.
fn inline_page_stylesheets(page: &Path) -> Result {
    let dir = page.parent().ok_or_else(|| format!("{} has no directory", page.display()))?;
    let html = std::fs::read_to_string(page).map_err(|e| format!("read {}: {e}", page.display()))?;
    let inlined = inline_stylesheets(&html, |href| {
        let file = dir.join(href);
        std::fs::read_to_string(&file).map_err(|e| format!("read {}: {e}", file.display()))
    })
    .map_err(|e| format!("{}: {e}", page.display()))?;
    std::fs::write(page, inlined).map_err(|e| format!("write {}: {e}", page.display()))
}

/// The extension's scripts: the worker and each page's. The build
/// replaces each with one file holding it and every module it imports
/// (esbuild: an ES module, scope-hoisted, not minified, each module's code
/// as written under a comment with its path), then removes every other
/// script, all of which are inside these. A page's modules are requests to
/// the browser process one after another as each import is found: with
/// the popup's ~30, its chat list was rendered 228 ms after it opened (the
/// worker running; 276 ms stopped), from one file 94 ms (171 ms), its first
/// paint unchanged (p50 of 11, side by side, on this 2-core machine); the
/// worker starts from one file too.
pub const EXTENSION_SCRIPTS: Scripts = Scripts {
    entries: &["background/worker.js", "popup/main.js", "popup/grant.js", "popup/record.js", "options/options.js"],
    kept: &[],
    pages: None,
};

/// The web app's: its page's script (`app/main.js`, with the popup's
/// modules it shares), on a phone a request over the network per module
/// (side by side, 30 ms from the server: its scripts were ready 772 ms
/// after the page opened, one file 271 ms). Its service worker is a classic
/// script, left as it is; the popup's pages it carries are markup only
/// (`app/chats.js` reads popup.html's), not pages of the app.
const APP_SCRIPTS: Scripts = Scripts { entries: &["app/main.js"], kept: &["sw.js"], pages: Some(&["index.html"]) };

/// Which scripts a build bundles (see [`bundle_scripts`]).
pub struct Scripts {
    /// Each replaced by one file holding it and every module it imports.
    pub entries: &'static [&'static str],
    /// Left as they are (scripts that are not modules).
    pub kept: &'static [&'static str],
    /// The pages whose scripts must be among `entries` and `kept`
    /// (None: every `.html`).
    pub pages: Option<&'static [&'static str]>,
}

/// Bundles each of `scripts.entries` in the files laid out in `out` in
/// place, then removes every other script but `scripts.kept`; refuses a
/// page that loads a script which is not one of those.
fn bundle_scripts(esbuild: &Path, out: &Path, scripts: &Scripts) -> Result {
    for entry in scripts.entries {
        let bundle = format!("{entry}.bundle");
        // From `out`: the path comments esbuild writes are relative to it,
        // so the bytes do not depend on where the build runs.
        util::run(
            Command::new(esbuild)
                .current_dir(out)
                .args([entry, "--bundle", "--format=esm", "--charset=utf8", "--log-level=warning"])
                .arg(format!("--outfile={bundle}")),
        )?;
        std::fs::rename(out.join(&bundle), out.join(entry)).map_err(|e| format!("{entry}: {e}"))?;
    }
    let left = remove_unbundled(out, scripts)?;
    if let Some((page, src)) = left.first() {
        return Err(format!("{page} loads {src}, which is not one of the bundled scripts (build::Scripts)"));
    }
    Ok(())
}

/// Removes every `.js` under `out` but `scripts`' entries and kept ones;
/// returns, from each page (`.html`) `scripts` checks, the scripts it
/// loads that are not among those, as (page, `src`).
fn remove_unbundled(out: &Path, scripts: &Scripts) -> Result<Vec<(String, String)>> {
    let listed = |rel: &str| scripts.entries.contains(&rel) || scripts.kept.contains(&rel);
    let mut files = Vec::new();
    list_files(out, out, &mut files)?;
    files.sort();
    let mut left = Vec::new();
    for rel in files {
        let path = out.join(&rel);
        if rel.ends_with(".js") && !listed(&rel) {
            std::fs::remove_file(&path).map_err(|e| format!("remove {}: {e}", path.display()))?;
        } else if rel.ends_with(".html") && scripts.pages.is_none_or(|pages| pages.contains(&rel.as_str())) {
            let html = std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
            let base = rel.rsplit_once('/').map_or("", |(d, _)| d);
            for src in script_sources(&html) {
                let full = if base.is_empty() { src.to_string() } else { format!("{base}/{src}") };
                if !listed(&full) {
                    left.push((rel.clone(), src.to_string()));
                }
            }
        }
    }
    Ok(left)
}

/// The `src` of each `<script … src="…">` of a page.
fn script_sources(html: &str) -> Vec<&str> {
    html.split("<script")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            let at = tag.find(" src=\"")? + " src=\"".len();
            Some(&tag[at..at + tag[at..].find('"')?])
        })
        .collect()
}

/// `html` with each line `<link rel="stylesheet" href="…">` gone and one
/// `<style>` in place of the first, holding the stylesheets in the order
/// they were linked (so the cascade is the same), each read by `read` from
/// its `href`. Refuses a page without such a line, and a stylesheet whose
/// meaning would change once inlined: one that refers to other files
/// (`url(`, `@import`: they would resolve against the page's address, not
/// the stylesheet's), one with `@charset` (allowed only at the start of a
/// file), or one with `</style` in it (which would end the element).
fn inline_stylesheets(html: &str, read: impl Fn(&str) -> Result<String>) -> Result<String> {
    let mut out = String::with_capacity(html.len());
    let mut style: Option<String> = None;
    for line in html.split_inclusive('\n') {
        let Some(href) =
            line.trim().strip_prefix(r#"<link rel="stylesheet" href=""#).and_then(|l| l.strip_suffix(r#"">"#))
        else {
            out.push_str(line);
            continue;
        };
        let css = read(href)?;
        let lower = css.to_ascii_lowercase();
        if let Some(what) = ["url(", "@import", "@charset", "</style"].into_iter().find(|w| lower.contains(w)) {
            return Err(format!("{href} has `{what}`, which would not mean the same inlined in the page"));
        }
        if style.is_none() {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}<style>\n{indent}</style>\n"));
            style = Some(String::new());
        }
        let style = style.as_mut().expect("set above");
        style.push_str(&format!("/* {href} */\n{css}"));
        if !css.ends_with('\n') {
            style.push('\n');
        }
    }
    let style = style.ok_or("no <link rel=\"stylesheet\"> to inline")?;
    let at = out.find("<style>\n").expect("written above") + "<style>\n".len();
    out.insert_str(at, &style);
    Ok(out)
}

/// Size flags for the shipped core (unstable, hence `RUSTC_BOOTSTRAP=1`,
/// which the Debian toolchain needs anyway): no file/line strings in panic
/// messages, and `{:?}` formats nothing (so no Debug formatting code). The
/// core never logs Debug output (nor keys or message content). Together
/// about 7 KB gzipped. Tests build without them. Then the compact
/// software backends of SHA-2 (a loop over the rounds, not 64 or 80
/// unrolled) and AES (bitsliced one block at a time): about 5 KB gzipped;
/// both run a few times per message, bulk media goes through WebCrypto.
const SIZE_FLAGS: &[&str] =
    &["-Zlocation-detail=none", "-Zfmt-debug=none", "--cfg", "sha2_backend_soft=\"compact\"", "--cfg", "aes_compact"];

/// The extension's wasm core as shipped, under `wasm/` in `dist/chrome`
/// and `dist/firefox`.
pub const CORE_WASM: &str = "tether_core_bg.wasm";

/// Where a wasm build reads its sources and writes its artifacts.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The workspace root.
    pub source: PathBuf,
    /// Cargo's target directory: the wasm under `wasm/`, wasm-bindgen's
    /// output under `wasm-bindgen/`.
    pub target: PathBuf,
}

impl Tree {
    /// This checkout and its target directory: what `dist/` is built from.
    pub fn here() -> Self {
        Tree { source: root(), target: target_dir() }
    }
}

/// The wasm build's rustflags: the size flags, then the absolute paths a
/// build could embed (the sources, cargo's home with the registry's
/// sources, the target directory with build scripts' output) remapped to
/// fixed names, so that the bytes do not depend on where these are
/// (`cargo xtask package` checks it). Longest last: rustc applies the last
/// remap that matches, so a directory inside another keeps its own name.
fn wasm_rustflags(tree: &Tree, cargo_home: &Path) -> Vec<String> {
    let mut remaps = [(cargo_home, "/cargo"), (tree.source.as_path(), "/tether"), (tree.target.as_path(), "/target")];
    remaps.sort_by_key(|(from, _)| from.as_os_str().len());
    let remaps = remaps.iter().map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display()));
    SIZE_FLAGS.iter().map(|f| f.to_string()).chain(remaps).collect()
}

/// Which build of the core.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// The extension's (a companion): `tether_core.js`.
    Extension,
    /// The phone web app's (feature `app`): `tether_app.js`.
    App,
}

impl Flavour {
    fn out_name(self) -> &'static str {
        match self {
            Flavour::Extension => "tether_core",
            Flavour::App => "tether_app",
        }
    }
}

/// The extension's wasm core built from `tree` (the package step's
/// second, clean build); returns the directory holding `tether_core.js`
/// and [`CORE_WASM`].
pub fn extension_core(tools: &BuildTools, tree: &Tree) -> Result<PathBuf> {
    wasm_core(tools, Flavour::Extension, tree)
}

/// cargo (wasm32, wasm-release) -> wasm-bindgen (--target web) -> wasm-opt.
/// Returns the directory holding `<name>.js` and `<name>_bg.wasm`.
fn wasm_core(tools: &BuildTools, flavour: Flavour, tree: &Tree) -> Result<PathBuf> {
    let mut rustflags = wasm_rustflags(tree, &util::cargo_home());
    rustflags.extend(tools.wasm.size_rustflags.iter().cloned());
    let mut build = tools.wasm.command_in("build", &tree.source, &tree.target);
    build
        .args(["--package", "tether-extension", "--lib", "--profile", "wasm-release"])
        .args(&tools.wasm.size_args)
        // A TOML array: paths with spaces stay one flag each.
        .arg("--config")
        .arg(format!("target.wasm32-unknown-unknown.rustflags={}", json!(rustflags)))
        .env("RUSTC_BOOTSTRAP", "1");
    if flavour == Flavour::App {
        build.args(["--features", "app"]);
    }
    util::run(&mut build)?;
    let raw = tree.target.join("wasm/wasm32-unknown-unknown/wasm-release/tether_extension.wasm");
    let name = flavour.out_name();
    let bindgen_out = tree.target.join("wasm-bindgen").join(name);
    let _ = std::fs::remove_dir_all(&bindgen_out);
    util::run(
        Command::new(&tools.wasm_bindgen)
            .arg(&raw)
            .args(["--target", "web", "--out-name", name, "--out-dir"])
            .arg(&bindgen_out),
    )?;
    let wasm = bindgen_out.join(format!("{name}_bg.wasm"));
    util::run(
        Command::new("node")
            .arg(&tools.wasm_opt)
            .arg(&wasm)
            // --low-memory-unused: the first 1 KB of memory is never
            // addressed. True of Rust's wasm32 layout: the stack comes first
            // and grows down from 1 MB toward 0 (data and heap lie above),
            // so only a stack within 1 KB of overflowing would reach it.
            // It lets wasm-opt fold constant offsets into loads (about 2 KB
            // gzipped). No --converge: repeating -Oz until nothing changes
            // doubled its time (38 s to 76 s per core here, in every test
            // run) for 3 KB gzipped (0.5 %).
            .args(["-Oz", "--low-memory-unused", "-o"])
            .arg(&wasm),
    )?;
    Ok(bindgen_out)
}

/// The manifest for one browser, derived from the `manifest.json` of
/// `source` (a checkout).
pub fn manifest(source: &Path, browser: &str) -> Result<Value> {
    let text = std::fs::read_to_string(source.join("manifest.json")).map_err(|e| e.to_string())?;
    let mut m: Value = serde_json::from_str(&text).map_err(|e| format!("manifest.json: {e}"))?;
    if browser == "firefox" {
        // Firefox's MV3 runs the background as an event page, not a service worker.
        let worker = m["background"]["service_worker"].clone();
        m["background"] = json!({ "scripts": [worker], "type": "module" });
        m.as_object_mut().expect("manifest is an object").remove("minimum_chrome_version");
        // Ctrl+Shift+Y opens Downloads in Firefox: its toolbar button gets a
        // key Firefox leaves free (the journeys' Firefox driver checks that no
        // built-in key shadows one of ours).
        m["commands"]["_execute_action"]["suggested_key"]["default"] = json!(FIREFOX_ACTION_KEY);
        // 140: the first Firefox that reads `data_collection_permissions`,
        // which addons.mozilla.org requires; everything else the extension
        // uses (MV3 event pages with module scripts, storage.session,
        // action.openPopup) is older.
        let obj = m.as_object_mut().expect("manifest is an object");
        obj.insert(
            "browser_specific_settings".into(),
            json!({ "gecko": {
                "id": GECKO_ID,
                "strict_min_version": "140.0",
                "data_collection_permissions": { "required": ["none"] }
            }, "gecko_android": { "strict_min_version": "142.0" } }),
        );
    }
    Ok(m)
}

fn gzipped_len(bytes: &[u8]) -> usize {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("in-memory write");
    gz.finish().expect("in-memory write").len()
}

/// Release binaries of the server and the CLI.
pub fn native_release() -> Result {
    let _t = Timer::start("release build of tether-server and tether");
    util::run(
        Command::new("cargo")
            .args(["build", "--release", "--package", "tether-server", "--package", "tether-cli"])
            .current_dir(root()),
    )
}

pub fn release_bin(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

/// What of the source tree the web app reuses from the extension: the
/// popup's modules and styles (its chat screens), the shared message
/// schema, the strings and the artwork.
const APP_SHARED_DIRS: &[&str] = &["popup", "common", "_locales", "icons"];
/// The web app's files served at the root (the rest stays under `/app/`):
/// the page, the manifest and the service worker (whose scope is where
/// it is served from).
const APP_ROOT_FILES: &[&str] = &["index.html", "manifest.webmanifest", "sw.js"];
/// The popup's modules that reach for chrome.* get the web app's own
/// version, with the same exports (the popup's screens import them
/// unchanged): the Port to the worker becomes the core in the page, and
/// chrome.i18n the same _locales files read with fetch.
const APP_OVERRIDES: &[(&str, &str)] =
    &[("app/popup-port.js", "popup/port.js"), ("app/popup-i18n.js", "popup/i18n.js")];

/// The phone web app into `dist/app` (tether-server embeds it): `app/`,
/// the reused extension modules, the `app` flavour of the core, and the
/// service worker's precache list (every file, and a version that changes
/// with any of them, so an update replaces the cached shell).
pub fn app(tools: &BuildTools) -> Result {
    let _t = Timer::start("web app build");
    let wasm = wasm_core(tools, Flavour::App, &Tree::here())?;
    let out = dist().join("app");
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("clean {}: {e}", out.display()))?;
    }
    copy_dir(&root().join("app"), &out.join("app"))?;
    for file in APP_ROOT_FILES {
        std::fs::rename(out.join("app").join(file), out.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    for dir in APP_SHARED_DIRS {
        copy_dir(&root().join(dir), &out.join(dir))?;
    }
    for (from, to) in APP_OVERRIDES {
        std::fs::copy(root().join(from), out.join(to)).map_err(|e| format!("{from} -> {to}: {e}"))?;
    }
    copy_dir(&wasm, &out.join("wasm"))?;
    bundle_scripts(&tools.esbuild, &out, &APP_SCRIPTS)?;
    let mut files = Vec::new();
    list_files(&out, &out, &mut files)?;
    files.sort();
    let mut hash = flate2::Crc::new();
    for f in &files {
        hash.update(f.as_bytes());
        hash.update(&std::fs::read(out.join(f)).map_err(|e| e.to_string())?);
    }
    let urls: Vec<String> = files
        .iter()
        .filter(|f| *f != "sw.js")
        .map(|f| if f == "index.html" { "./".to_string() } else { format!("./{f}") })
        .collect();
    std::fs::write(
        out.join("app/precache.js"),
        format!(
            "// Written by `cargo xtask build`: the service worker's shell.\nself.PRECACHE = {};\n",
            json!({ "version": format!("{:08x}", hash.sum()), "files": urls })
        ),
    )
    .map_err(|e| e.to_string())?;
    let bytes = std::fs::read(wasm.join("tether_app_bg.wasm")).map_err(|e| e.to_string())?;
    eprintln!("xtask: web app core {} KB, {} KB gzipped -> dist/app", bytes.len() / 1024, gzipped_len(&bytes) / 1024);
    Ok(())
}

/// Every file under `dir`, as paths relative to `base` with `/`.
fn list_files(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) -> Result {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        if path.is_dir() {
            list_files(base, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_at(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_page_s_scripts_are_read_from_its_script_tags() {
        let html = "<head>\n  <script type=\"module\" async src=\"cached.js\"></script>\n<script src=\"../common/x.js\" defer></script>\n<script>inline()</script>\n<p data-src=\"no.js\">";
        assert_eq!(script_sources(html), ["cached.js", "../common/x.js"]);
    }

    #[test]
    fn only_the_bundled_scripts_are_left_and_a_page_loading_another_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let at = |rel: &str, text: &str| write_at(dir.path(), rel, text);
        at("popup/main.js", "bundle");
        at("popup/dom.js", "module");
        at("common/messages.js", "module");
        at("popup/popup.html", "<script type=\"module\" src=\"main.js\"></script>");
        at("options/options.html", "<script type=\"module\" src=\"options.js\"></script>");
        let left = remove_unbundled(dir.path(), &EXTENSION_SCRIPTS).unwrap();
        assert!(dir.path().join("popup/main.js").is_file());
        assert!(!dir.path().join("popup/dom.js").exists() && !dir.path().join("common/messages.js").exists());
        assert!(left.is_empty(), "{left:?}");

        at(
            "popup/popup.html",
            "<script type=\"module\" async src=\"cached.js\"></script><script type=\"module\" src=\"main.js\"></script>",
        );
        let left = remove_unbundled(dir.path(), &EXTENSION_SCRIPTS).unwrap();
        assert_eq!(left, [("popup/popup.html".to_string(), "cached.js".to_string())]);
    }

    #[test]
    fn the_web_app_keeps_its_service_worker_and_checks_its_own_page_only() {
        let dir = tempfile::tempdir().unwrap();
        let at = |rel: &str, text: &str| write_at(dir.path(), rel, text);
        at("app/main.js", "bundle");
        at("app/engine.js", "module");
        at("sw.js", "importScripts('app/precache.js')");
        at("index.html", "<script type=\"module\" src=\"app/main.js\"></script>");
        // Markup the app reads, not a page of it.
        at("popup/popup.html", "<script type=\"module\" src=\"main.js\"></script>");
        let left = remove_unbundled(dir.path(), &APP_SCRIPTS).unwrap();
        assert!(left.is_empty(), "{left:?}");
        assert!(dir.path().join("sw.js").is_file() && dir.path().join("app/main.js").is_file());
        assert!(!dir.path().join("app/engine.js").exists());

        at("index.html", "<script src=\"app/engine.js\"></script>");
        let left = remove_unbundled(dir.path(), &APP_SCRIPTS).unwrap();
        assert_eq!(left, [("index.html".to_string(), "app/engine.js".to_string())]);
    }

    fn sheets(href: &str) -> Result<String> {
        match href {
            "a.css" => Ok("a { color: red; }\n".into()),
            "screens/b.css" => Ok("b { color: blue; }".into()),
            "url.css" => Ok("i { background: URL(x.png); }\n".into()),
            _ => Err(format!("no {href}")),
        }
    }

    #[test]
    fn stylesheets_are_inlined_in_one_style_in_their_order() {
        let html = "<head>\n  <title>T</title>\n  <link rel=\"stylesheet\" href=\"a.css\">\n  \
                    <link rel=\"stylesheet\" href=\"screens/b.css\">\n  <script type=\"module\" src=\"m.js\"></script>\n\
                    </head>\n<body><p>hi</p></body>\n";
        assert_eq!(
            inline_stylesheets(html, sheets).unwrap(),
            "<head>\n  <title>T</title>\n  <style>\n/* a.css */\na { color: red; }\n/* screens/b.css */\n\
             b { color: blue; }\n  </style>\n  <script type=\"module\" src=\"m.js\"></script>\n</head>\n\
             <body><p>hi</p></body>\n"
        );
    }

    #[test]
    fn a_stylesheet_that_would_change_meaning_inlined_is_refused() {
        let html = "<link rel=\"stylesheet\" href=\"a.css\">\n<link rel=\"stylesheet\" href=\"url.css\">\n";
        assert!(inline_stylesheets(html, sheets).unwrap_err().contains("url.css has `url(`"));
        assert!(inline_stylesheets("<link rel=\"stylesheet\" href=\"gone.css\">\n", sheets).is_err());
        assert!(inline_stylesheets("<p>no stylesheet</p>\n", sheets).is_err());
    }

    #[test]
    fn wasm_rustflags_remap_every_build_path_the_innermost_last() {
        let tree = Tree { source: "/src/tether".into(), target: "/src/tether/target".into() };
        let flags = wasm_rustflags(&tree, Path::new("/home/me/.cargo"));
        assert_eq!(
            flags,
            [
                "-Zlocation-detail=none",
                "-Zfmt-debug=none",
                "--cfg",
                "sha2_backend_soft=\"compact\"",
                "--cfg",
                "aes_compact",
                "--remap-path-prefix=/src/tether=/tether",
                "--remap-path-prefix=/home/me/.cargo=/cargo",
                "--remap-path-prefix=/src/tether/target=/target",
            ]
        );
    }
}
