//! `cargo xtask package`: what the stores take, in `dist/`.
//!
//! - `tether-chrome.zip`, `tether-firefox.zip`: the built extension, the
//!   manifest at the zip root and nothing but what the extension needs.
//! - `tether-firefox-source.zip`: for addons.mozilla.org, which asks for the
//!   source of built code (the wasm core) and how to build it: the
//!   repository's tracked files, with `docs/build-firefox.md` as `BUILD.md`
//!   at the root. Then the core is built a second time, from that archive
//!   unpacked in a temporary directory into a fresh target directory, and
//!   must come out byte for byte as in `dist/firefox`, or the step fails.
//!
//! Every zip lists its entries sorted, with a fixed date: the same inputs
//! give the same bytes.

use crate::build::{self, Tree};
use crate::setup::{self, Tools};
use crate::util::{self, Result, Timer, root};
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
    check_reproducible(&tools, &source)
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
/// compiler (`rustc --version`), the wasm-bindgen CLI and binaryen.
fn toolchain_facts(tools: &Tools) -> Result<Vec<String>> {
    let rustc = tools.wasm.env.iter().find(|(k, _)| k == "RUSTC").map_or("rustc", |(_, v)| v.as_str());
    let rustc_version = util::output(Command::new(rustc).arg("--version").current_dir(root()))
        .ok_or_else(|| format!("`{rustc} --version` failed"))?;
    let package: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("package.json")).map_err(|e| format!("package.json: {e}"))?,
    )
    .map_err(|e| format!("package.json: {e}"))?;
    let binaryen = package["devDependencies"]["binaryen"].as_str().ok_or("package.json has no binaryen")?;
    Ok(vec![
        rustc_version.trim().to_string(),
        format!("wasm-bindgen-cli {}", setup::wasm_bindgen_version()),
        format!("binaryen {binaryen}"),
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

/// Builds the wasm core again, from clean: `archive` unpacked in a
/// temporary directory, a fresh target directory there (so the sources,
/// the target directory and their paths all differ from the first build),
/// and compares what it makes (the wasm and its JavaScript glue) with
/// `dist/firefox/wasm`, byte for byte.
fn check_reproducible(tools: &Tools, archive: &Path) -> Result {
    let _t = Timer::start("second, clean build of the wasm core from the source archive");
    let scratch = std::env::temp_dir().join(format!("tether-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let tree = Tree { source: scratch.join("source"), target: scratch.join("target") };
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    zip::ZipArchive::new(file)
        .and_then(|mut zip| zip.extract(&tree.source))
        .map_err(|e| format!("unpack {}: {e}", archive.display()))?;
    let again = build::extension_core(tools, &tree)?;
    let shipped = build::dist().join("firefox/wasm");
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()));
    let mut names = Vec::new();
    collect(&again, &again, &mut names)?;
    names.sort();
    for name in &names {
        let (a, b) = (read(&shipped.join(name))?, read(&again.join(name))?);
        if a != b {
            return Err(format!(
                "the wasm core is not reproducible: {} ({} bytes, sha256 {}) differs from the same file built again \
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
    let wasm = read(&shipped.join(build::CORE_WASM))?;
    eprintln!(
        "xtask: reproducible: built again from the source archive (in {}), {} are the same byte for byte; {}: {} \
         bytes, sha256 {}",
        scratch.display(),
        names.join(", "),
        build::CORE_WASM,
        wasm.len(),
        sha256(&wasm)
    );
    std::fs::remove_dir_all(&scratch).map_err(|e| format!("remove {}: {e}", scratch.display()))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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
}
