//! The RGB canvas the PNG grids are drawn on, pixel by pixel, with text in the
//! built-in font.
use super::font::glyph;
use std::path::Path;

/// An RGB canvas.
pub struct Canvas {
    w: usize,
    h: usize,
    /// `w * h` RGB triples, row by row.
    px: Vec<u8>,
}

/// The canvas colour; tests find the tiles by it.
pub const BACKGROUND: [u8; 3] = [32, 32, 36];
/// Titles.
pub const TEXT: [u8; 3] = [235, 235, 235];
/// Tile numbers.
pub const DIM_TEXT: [u8; 3] = [160, 160, 170];

impl Canvas {
    /// A `w x h` canvas filled with [`BACKGROUND`].
    pub fn new(w: usize, h: usize) -> Canvas {
        let mut px = vec![0u8; w * h * 3];
        for p in px.chunks_exact_mut(3) {
            p.copy_from_slice(&BACKGROUND);
        }
        Canvas { w, h, px }
    }

    /// Sets one pixel; pixels off the canvas are ignored.
    pub fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.w && y < self.h {
            let i = (y * self.w + x) * 3;
            self.px[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// Draws `text` with the 5x7 font, each font pixel `scale` x `scale`.
    pub fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, rgb: [u8; 3]) {
        for (k, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            let gx = x + k * 6 * scale;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for sy in 0..scale {
                            for sx in 0..scale {
                                self.set(gx + col * scale + sx, y + r * scale + sy, rgb);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes the canvas as a PNG file.
    pub fn save_png(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let img = image::RgbImage::from_raw(self.w as u32, self.h as u32, self.px.clone())
            .ok_or("internal: canvas size")?;
        img.save_with_format(path, image::ImageFormat::Png)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(())
    }
}

/// Width in pixels of `text` drawn at `scale` (a glyph and its 1-pixel gap).
pub fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * 6 * scale
}
