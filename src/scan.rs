//! QR codes in camera frames (feature `app`), decoded in wasm with `rqrr`:
//! `BarcodeDetector` is missing on many phones' browsers (Firefox, and
//! Chrome on some platforms), so the web app never relies on it.

use wasm_bindgen::prelude::*;

/// The text of the first QR code found in a frame, if any. `pixels` is
/// either RGBA (4 bytes a pixel, as `getImageData` gives) or luma (1 byte a
/// pixel), row by row, `width` × `height`. Any other length finds nothing.
pub fn decode(pixels: &[u8], width: usize, height: usize) -> Option<String> {
    let area = width.checked_mul(height)?;
    if area == 0 {
        return None;
    }
    let luma: Vec<u8> = if pixels.len() == area * 4 {
        // ITU-R BT.601 weights, in integers.
        pixels
            .chunks_exact(4)
            .map(|p| ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8)
            .collect()
    } else if pixels.len() == area {
        pixels.to_vec()
    } else {
        return None;
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| luma[y * width + x]);
    image.detect_grids().into_iter().find_map(|grid| grid.decode().ok().map(|(_, text)| text))
}

/// `decodeQr(pixels, width, height)`: see [`decode`]; null when the frame
/// holds no readable QR code.
#[wasm_bindgen(js_name = decodeQr)]
pub fn decode_qr(pixels: &[u8], width: u32, height: u32) -> Option<String> {
    decode(pixels, width as usize, height as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, imageops};
    use qrcode::QrCode;

    const URI: &str = "tether://link#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8";

    fn qr_image(text: &str, module_px: u32) -> GrayImage {
        QrCode::new(text.as_bytes()).unwrap().render::<Luma<u8>>().module_dimensions(module_px, module_px).build()
    }

    /// A camera-like frame: the code small in a larger grey scene.
    fn in_scene(code: &GrayImage, w: u32, h: u32) -> GrayImage {
        let mut scene = GrayImage::from_pixel(w, h, Luma([150]));
        imageops::overlay(&mut scene, code, i64::from((w - code.width()) / 2), i64::from((h - code.height()) / 3));
        scene
    }

    fn rgba(img: &GrayImage) -> Vec<u8> {
        img.pixels().flat_map(|p| [p.0[0], p.0[0], p.0[0], 255]).collect()
    }

    #[test]
    fn a_clean_qr_decodes_from_rgba_and_luma() {
        let img = in_scene(&qr_image(URI, 6), 640, 480);
        assert_eq!(decode(&rgba(&img), 640, 480).as_deref(), Some(URI));
        assert_eq!(decode(img.as_raw(), 640, 480).as_deref(), Some(URI));
    }

    #[test]
    fn a_downscaled_noisy_qr_still_decodes() {
        let big = in_scene(&qr_image(URI, 8), 1280, 960);
        // Downscaled by a camera-ish filter to 40 %, then noise (a fixed LCG).
        let mut img = imageops::resize(&big, 512, 384, imageops::FilterType::Triangle);
        let mut seed: u32 = 12345;
        for p in img.pixels_mut() {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let noise = ((seed >> 16) % 41) as i32 - 20;
            p.0[0] = (i32::from(p.0[0]) + noise).clamp(0, 255) as u8;
        }
        assert_eq!(decode(&rgba(&img), 512, 384).as_deref(), Some(URI));
    }

    #[test]
    fn frames_without_a_code_or_of_the_wrong_size_find_nothing() {
        let blank = GrayImage::from_pixel(320, 240, Luma([200]));
        assert_eq!(decode(blank.as_raw(), 320, 240), None);
        assert_eq!(decode(&[0; 10], 320, 240), None);
        assert_eq!(decode(&[], 0, 0), None);
    }
}
