//! `cargo xtask package`: store-ready zips of the built extension, the
//! manifest at the zip root and nothing but what the extension needs.

use crate::build;
use crate::setup;
use crate::util::{Result, Timer};
use std::io::Write;
use std::path::Path;
use zip::write::SimpleFileOptions;

pub fn run() -> Result {
    let tools = setup::run()?;
    build::extension(&tools, build::DEFAULT_SERVER)?;
    let _t = Timer::start("package");
    for browser in ["chrome", "firefox"] {
        let src = build::dist().join(browser);
        let out = build::dist().join(format!("tether-{browser}.zip"));
        let n = zip_dir(&src, &out)?;
        let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        eprintln!("xtask: {} ({n} files, {} KB)", out.display(), size / 1024);
    }
    Ok(())
}

/// Zips the contents of `src` (not `src` itself) into `out`; returns the
/// number of files. Entries are sorted so that the zip is reproducible.
fn zip_dir(src: &Path, out: &Path) -> Result<usize> {
    let mut files = Vec::new();
    collect(src, src, &mut files)?;
    files.sort();
    let file = std::fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for rel in &files {
        let bytes = std::fs::read(src.join(rel)).map_err(|e| e.to_string())?;
        zip.start_file(rel.as_str(), opts)
            .map_err(|e| e.to_string())?;
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
