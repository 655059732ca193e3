//! Reading a link QR code from a screenshot or photo (rqrr).

use std::path::Path;

/// The text of the first QR code found in an image file.
pub fn decode_file(path: &Path) -> Result<String, String> {
    let img = image::open(path).map_err(|e| format!("cannot read {} as an image: {e}", path.display()))?.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let grid = grids.first().ok_or_else(|| format!("no QR code found in {}", path.display()))?;
    let (_, content) = grid.decode().map_err(|e| format!("the QR code in {} is unreadable: {e}", path.display()))?;
    Ok(content)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_qr_rendered_by_the_qrcode_crate_decodes_back_to_the_same_text() {
        let text = "tether://link#CAESIGVkZmFzZGZhc2RmYXNkZmFzZGZhc2RmYXNkZmFzZGY";
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let img = code.render::<image::Luma<u8>>().min_dimensions(300, 300).build();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qr.png");
        img.save(&path).unwrap();
        assert_eq!(super::decode_file(&path).unwrap(), text);
        assert!(super::decode_file(&dir.path().join("missing.png")).is_err());
    }
}
