//! `cargo xtask package`: what the stores take, in `dist/`.
//!
//! - `tether-chrome.zip`, `tether-firefox.zip`: the built extension, the
//!   manifest at the zip root and nothing but what the extension needs.
//! - `tether-firefox-source.zip`: for addons.mozilla.org, which asks for the
//!   source of built code (the wasm core) and how to build it: the
//!   repository's tracked files, with `docs/build-firefox.md` as `BUILD.md`
//!   at the root. Then the add-on is built a second time, from that archive
//!   unpacked in a temporary directory into a fresh target directory, and
//!   must come out byte for byte as `dist/firefox`, or the step fails.
//! - `store/`: the Chrome Web Store listing: the 128 px icon, the short
//!   description (the manifest's, at most 132 characters), the long one
//!   (`store/long-description.txt`) and 1280 × 800 screenshots of the real
//!   popup (`tests/e2e/store-screenshots.mjs`).
//!
//! Every zip lists its entries sorted, with a fixed date: the same inputs
//! give the same bytes.

use crate::build::{self, Tree};
use crate::setup::{self, Tools};
use crate::util::{self, Result, Timer, root, target_dir};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use zip::write::SimpleFileOptions;

/// The build instructions in the source archive (as `BUILD.md`).
const BUILD_DOC: &str = "docs/build-firefox.md";
/// Tracked paths left out of the source archive, which the build does not
/// read: CI's entry point and the browser end-to-end tests.
const SOURCE_LEFT_OUT: &[&str] = &[".ci/", "tests/"];
/// The Chrome Web Store's limit on the short description (the manifest's
/// `description`, which the store shows as the summary).
const SHORT_DESCRIPTION_MAX: usize = 132;
/// The listing's long description, as committed.
const LONG_DESCRIPTION: &str = "store/long-description.txt";
/// The Chrome Web Store's screenshot size.
const SCREENSHOT_SIZE: (u32, u32) = (1280, 800);

pub fn run() -> Result {
    let tools = setup::run()?;
    build::extension(&tools, build::DEFAULT_SERVER)?;
    for browser in ["chrome", "firefox"] {
        let src = build::dist().join(browser);
        let out = build::dist().join(format!("tether-{browser}.zip"));
        let n = zip_dir(&src, &out)?;
        report(&out, &format!("{n} files"));
    }
    let source = source_archive(&tools)?;
    check_reproducible(&tools, &source)?;
    store_listing(&tools)
}

fn report(file: &Path, what: &str) {
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    eprintln!("xtask: {} ({what}, {} KB)", file.display(), size.div_ceil(1024));
}

// ---------------------------------------------------------------- zips

/// Zips the contents of `src` (not `src` itself) into `out`; returns the
/// number of files.
fn zip_dir(src: &Path, out: &Path) -> Result<usize> {
    let mut files = Vec::new();
    collect(src, src, &mut files)?;
    let files: Vec<(String, PathBuf)> = files.into_iter().map(|rel| (rel.clone(), src.join(rel))).collect();
    write_zip(out, files)
}

/// Writes `(name in the zip, file)` pairs into `out`, sorted by name and
/// with a fixed date, so that the zip is reproducible; returns how many.
fn write_zip(out: &Path, mut files: Vec<(String, PathBuf)>) -> Result<usize> {
    files.sort();
    let file = std::fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for (name, path) in &files {
        let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        zip.start_file(name.as_str(), opts).map_err(|e| e.to_string())?;
        zip.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    zip.finish().map_err(|e| e.to_string())?;
    Ok(files.len())
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result {
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(base, &path, out)?;
        } else if path.to_string_lossy().ends_with(".d.ts") {
            // TypeScript declarations are for tsc, not the browser.
            continue;
        } else {
            let rel = path.strip_prefix(base).expect("under base");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

// ------------------------------------------------------ source archive

/// `dist/tether-firefox-source.zip`: the tracked files (`git ls-files`) as
/// they are in the working tree (what `dist/firefox` was just built from),
/// but those of [`SOURCE_LEFT_OUT`], and `BUILD.md`.
fn source_archive(tools: &Tools) -> Result<PathBuf> {
    let doc = std::fs::read_to_string(root().join(BUILD_DOC)).map_err(|e| format!("{BUILD_DOC}: {e}"))?;
    check_build_doc(&doc, &toolchain_facts(tools)?)?;
    let listed = util::output(Command::new("git").args(["ls-files", "-z"]).current_dir(root()))
        .ok_or("`git ls-files` failed: the source archive is made from the git checkout")?;
    let mut files = Vec::new();
    for name in listed.split('\0').filter(|n| !n.is_empty()) {
        if name == "BUILD.md" {
            return Err(format!("the repository has a BUILD.md of its own: the source archive's is {BUILD_DOC}"));
        }
        let path = root().join(name);
        // A file deleted in the working tree is not part of this build.
        if !SOURCE_LEFT_OUT.iter().any(|p| name.starts_with(p)) && path.is_file() {
            files.push((name.to_string(), path));
        }
    }
    let changed = util::output(
        Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).current_dir(root()),
    )
    .unwrap_or_default();
    let changed = changed.lines().count();
    if changed > 0 {
        eprintln!(
            "xtask: warning: {changed} tracked files have uncommitted changes; the source archive holds them as they are \
             (what dist/ was built from): commit them so that the archive is a commit"
        );
    }
    files.push(("BUILD.md".to_string(), root().join(BUILD_DOC)));
    let out = build::dist().join("tether-firefox-source.zip");
    let n = write_zip(&out, files)?;
    report(&out, &format!("{n} files, BUILD.md from {BUILD_DOC}"));
    Ok(out)
}

/// What `BUILD.md` must name exactly, as this build used it: the Rust
/// compiler (`rustc --version`), the wasm-bindgen CLI, binaryen and esbuild.
fn toolchain_facts(tools: &Tools) -> Result<Vec<String>> {
    let rustc = tools.wasm.env.iter().find(|(k, _)| k == "RUSTC").map_or("rustc", |(_, v)| v.as_str());
    let rustc_version = util::output(Command::new(rustc).arg("--version").current_dir(root()))
        .ok_or_else(|| format!("`{rustc} --version` failed"))?;
    let package: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("package.json")).map_err(|e| format!("package.json: {e}"))?,
    )
    .map_err(|e| format!("package.json: {e}"))?;
    let binaryen = package["devDependencies"]["binaryen"].as_str().ok_or("package.json has no binaryen")?;
    let esbuild = package["devDependencies"]["esbuild"].as_str().ok_or("package.json has no esbuild")?;
    Ok(vec![
        rustc_version.trim().to_string(),
        format!("wasm-bindgen-cli {}", setup::wasm_bindgen_version()),
        format!("binaryen {binaryen}"),
        format!("esbuild {esbuild}"),
    ])
}

/// An error naming what `doc` does not say (each fact verbatim).
fn check_build_doc(doc: &str, facts: &[String]) -> Result {
    let missing: Vec<&str> = facts.iter().filter(|f| !doc.contains(f.as_str())).map(|f| f.as_str()).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{BUILD_DOC} does not name what this build uses: `{}`. Reviewers rebuild the add-on from it: bring it up to date",
            missing.join("`, `")
        ))
    }
}

/// Builds the add-on again, from clean: `archive` unpacked in a temporary
/// directory, a fresh target directory there (so the sources, the target
/// directory and their paths all differ from the first build), the core
/// built and the Firefox add-on laid out from them (scripts bundled), and
/// compares it with `dist/firefox`: the same files, byte for byte (as
/// BUILD.md has reviewers check).
fn check_reproducible(tools: &Tools, archive: &Path) -> Result {
    let _t = Timer::start("second, clean build of the add-on from the source archive");
    let scratch = std::env::temp_dir().join(format!("tether-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let tree = Tree { source: scratch.join("source"), target: scratch.join("target") };
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    zip::ZipArchive::new(file)
        .and_then(|mut zip| zip.extract(&tree.source))
        .map_err(|e| format!("unpack {}: {e}", archive.display()))?;
    let core = build::extension_core(tools, &tree)?;
    let again = scratch.join("firefox");
    build::lay_out(tools, &core, &tree.source, &again, "firefox", build::DEFAULT_SERVER)?;
    let shipped = build::dist().join("firefox");
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()));
    let (mut names, mut shipped_names) = (Vec::new(), Vec::new());
    collect(&again, &again, &mut names)?;
    collect(&shipped, &shipped, &mut shipped_names)?;
    names.sort();
    shipped_names.sort();
    if names != shipped_names {
        return Err(format!(
            "the add-on built again from the source archive ({}) has other files than {}: {:?} against {:?}",
            again.display(),
            shipped.display(),
            names,
            shipped_names
        ));
    }
    for name in &names {
        let (a, b) = (read(&shipped.join(name))?, read(&again.join(name))?);
        if a != b {
            return Err(format!(
                "the add-on is not reproducible: {} ({} bytes, sha256 {}) differs from the same file built again \
                 from the source archive, {} ({} bytes, sha256 {}); kept for comparison in {}",
                shipped.join(name).display(),
                a.len(),
                sha256(&a),
                again.join(name).display(),
                b.len(),
                sha256(&b),
                scratch.display()
            ));
        }
    }
    let wasm = read(&shipped.join("wasm").join(build::CORE_WASM))?;
    eprintln!(
        "xtask: reproducible: built again from the source archive (in {}), its {} files are those of dist/firefox \
         byte for byte; {}: {} bytes, sha256 {}",
        scratch.display(),
        names.len(),
        build::CORE_WASM,
        wasm.len(),
        sha256(&wasm)
    );
    std::fs::remove_dir_all(&scratch).map_err(|e| format!("remove {}: {e}", scratch.display()))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

// ------------------------------------------------------- store listing

/// `dist/store/`: `icon-128.png`, `short-description.txt`,
/// `long-description.txt` and `screenshot-N.png`.
fn store_listing(tools: &Tools) -> Result {
    let out = build::dist().join("store");
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("clean {}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;

    let icon = std::fs::read(root().join("icons/icon-128.png")).map_err(|e| format!("icons/icon-128.png: {e}"))?;
    if png_size(&icon) != Some((128, 128)) {
        return Err(format!("icons/icon-128.png is not a 128 × 128 PNG ({:?})", png_size(&icon)));
    }
    std::fs::write(out.join("icon-128.png"), &icon).map_err(|e| e.to_string())?;

    let short = short_description()?;
    std::fs::write(out.join("short-description.txt"), format!("{short}\n")).map_err(|e| e.to_string())?;
    let long = std::fs::read_to_string(root().join(LONG_DESCRIPTION)).map_err(|e| format!("{LONG_DESCRIPTION}: {e}"))?;
    if long.trim().is_empty() {
        return Err(format!("{LONG_DESCRIPTION} is empty"));
    }
    std::fs::write(out.join("long-description.txt"), &long).map_err(|e| e.to_string())?;

    screenshots(tools, &out)?;
    let mut shots: Vec<PathBuf> = std::fs::read_dir(&out)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("screenshot-")))
        .collect();
    shots.sort();
    if shots.is_empty() {
        return Err("the screenshot script wrote no dist/store/screenshot-*.png".into());
    }
    for shot in &shots {
        let size = png_size(&std::fs::read(shot).map_err(|e| e.to_string())?);
        if size != Some(SCREENSHOT_SIZE) {
            return Err(format!("{} is {size:?}, not a {SCREENSHOT_SIZE:?} PNG", shot.display()));
        }
        report(shot, &format!("{} × {}", SCREENSHOT_SIZE.0, SCREENSHOT_SIZE.1));
    }
    eprintln!(
        "xtask: {}: icon-128.png, short-description.txt ({} characters), long-description.txt ({} characters), {} screenshots",
        out.display(),
        short.chars().count(),
        long.chars().count(),
        shots.len()
    );
    Ok(())
}

/// The manifest's description in English (`extDescription`), which the
/// Chrome Web Store shows as the listing's summary: at most 132 characters.
fn short_description() -> Result<String> {
    let file = root().join("_locales/en/messages.json");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let messages: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let short = messages["extDescription"]["message"].as_str().ok_or("_locales/en/messages.json has no extDescription")?;
    check_short_description(short)?;
    Ok(short.to_string())
}

fn check_short_description(short: &str) -> Result {
    let n = short.chars().count();
    if n == 0 || n > SHORT_DESCRIPTION_MAX {
        return Err(format!(
            "the short description (extDescription in _locales/en/messages.json) has {n} characters; the Chrome Web \
             Store takes 1 to {SHORT_DESCRIPTION_MAX}"
        ));
    }
    Ok(())
}

/// The store's screenshots of the real popup, by tests/e2e/store-screenshots.mjs
/// against a real tether-server and `tether` CLI users (debug builds: the
/// screenshots do not need optimised ones, and `cargo xtask test` builds
/// the same).
fn screenshots(tools: &Tools, out: &Path) -> Result {
    let _t = Timer::start("store screenshots");
    util::run(
        Command::new("cargo")
            .args(["build", "--package", "tether-server", "--package", "tether-cli"])
            .current_dir(root()),
    )?;
    util::run(
        Command::new("node")
            .arg(root().join("tests/e2e/store-screenshots.mjs"))
            .env("TETHER_STORE_OUT", out)
            .env("TETHER_ARTIFACTS", target_dir().join("store-screenshots"))
            .env("TETHER_EXTENSION", build::dist().join("chrome"))
            .env("TETHER_SERVER_BIN", target_dir().join("debug/tether-server"))
            .env("TETHER_CLI_BIN", target_dir().join("debug/tether"))
            .env("CHROMIUM", &tools.chromium)
            .current_dir(root()),
    )
}

/// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    Some((be(16), be(20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_doc_names_every_fact_verbatim() {
        let facts = vec!["rustc 1.95.0 (59807616e 2026-04-14)".to_string(), "binaryen 132.0.0".to_string()];
        assert!(check_build_doc("Rust: `rustc 1.95.0 (59807616e 2026-04-14)`, binaryen 132.0.0 from npm", &facts).is_ok());
        let err = check_build_doc("rustc 1.94.1 (aaaaaaaaa 2026-01-01), binaryen 132.0.0", &facts).unwrap_err();
        assert!(err.contains("`rustc 1.95.0 (59807616e 2026-04-14)`") && !err.contains("binaryen"), "{err}");
    }

    #[test]
    fn the_short_description_fits_the_store() {
        assert!(check_short_description(&"x".repeat(132)).is_ok());
        // Characters, not bytes.
        assert!(check_short_description(&"é".repeat(132)).is_ok());
        assert!(check_short_description(&"x".repeat(133)).is_err());
        assert!(check_short_description("").is_err());
        assert!(short_description().is_ok(), "the committed one fits");
    }

    #[test]
    fn reads_a_png_header() {
        let icon = std::fs::read(root().join("icons/icon-128.png")).unwrap();
        assert_eq!(png_size(&icon), Some((128, 128)));
        assert_eq!(png_size(b"GIF89a, not a PNG at all"), None);
    }
}
