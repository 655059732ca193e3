// Test pictures: a PNG colour gradient made with pngjs (no image files in
// the repository).

import { PNG } from "pngjs";

/** A `width`×`height` PNG, a colour gradient. @returns {Buffer} */
export function png(width, height) {
  const img = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      img.data[o] = Math.round((255 * x) / width);
      img.data[o + 1] = Math.round(120 + (100 * y) / height);
      img.data[o + 2] = Math.round(255 - (200 * x) / width);
      img.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(img);
}
