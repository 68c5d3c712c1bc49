//! A 5 × 7 pixel bitmap font for the plot labels (printable ASCII), drawn for cellino so that the
//! plots need no font file or text-rendering dependency.

use image::{Rgb, RgbImage};

/// Glyph width and height in font pixels.
pub const GLYPH_W: u32 = 5;
pub const GLYPH_H: u32 = 7;
/// Horizontal step from one character to the next (one blank column between glyphs).
pub const ADVANCE: u32 = GLYPH_W + 1;
/// Lower-case letters whose tail goes below the line: their rows are drawn this much lower.
const DESCENDERS: &str = "gpqy";
const DESCENT: u32 = 2;

/// Rows of `' '..='~'`, top to bottom; bit 4 is the leftmost column. The letters of [`DESCENDERS`]
/// have their x-height part in rows 0-4 and their tail in rows 5-6.
const GLYPHS: [[u8; 7]; 95] = [
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // ' '
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100], // '!'
    [0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000], // '"'
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010], // '#'
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100], // '$'
    [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011], // '%'
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101], // '&'
    [0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000], // "'"
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010], // '('
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000], // ')'
    [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000], // '*'
    [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000], // '+'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000], // ','
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000], // '-'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100], // '.'
    [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000], // '/'
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // '0'
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // '1'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // '2'
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110], // '3'
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // '4'
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // '5'
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // '6'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // '7'
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // '8'
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // '9'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000], // ':'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000], // ';'
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010], // '<'
    [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000], // '='
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000], // '>'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100], // '?'
    [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110], // '@'
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // 'A'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // 'B'
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // 'C'
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // 'D'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // 'E'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // 'F'
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // 'G'
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // 'H'
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 'I'
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // 'J'
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // 'K'
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // 'L'
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // 'M'
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // 'N'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // 'O'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // 'P'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // 'Q'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // 'R'
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // 'S'
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // 'T'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // 'U'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // 'V'
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // 'W'
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // 'X'
    [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100], // 'Y'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // 'Z'
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110], // '['
    [0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000], // '\\'
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110], // ']'
    [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000], // '^'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111], // '_'
    [0b01000, 0b00100, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000], // '`'
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111], // 'a'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110], // 'b'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110], // 'c'
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111], // 'd'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110], // 'e'
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000], // 'f'
    [0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b10001, 0b01110], // 'g'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // 'h'
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110], // 'i'
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100], // 'j'
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010], // 'k'
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 'l'
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001], // 'm'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // 'n'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110], // 'o'
    [0b11110, 0b10001, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000], // 'p'
    [0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001], // 'q'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000], // 'r'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110], // 's'
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110], // 't'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101], // 'u'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // 'v'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010], // 'w'
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001], // 'x'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // 'y'
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111], // 'z'
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010], // '{'
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // '|'
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000], // '}'
    [0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000], // '~'
];

/// The rows of `c`; characters outside printable ASCII are drawn as `?`.
pub fn glyph(c: char) -> [u8; 7] {
    let code = c as u32;
    let index = if (32..127).contains(&code) { code - 32 } else { '?' as u32 - 32 };
    GLYPHS[index as usize]
}

/// Width in image pixels of `text` at `scale` (no trailing blank column).
pub fn text_width(text: &str, scale: u32) -> u32 {
    (text.chars().count() as u32 * ADVANCE).saturating_sub(1) * scale
}

/// Height in image pixels of a line of text at `scale`, descenders included.
pub fn text_height(scale: u32) -> u32 {
    (GLYPH_H + DESCENT) * scale
}

/// Sets the pixels of every font pixel of `text` through `put(column, row)` (font coordinates of
/// the whole line, each `scale × scale`).
fn for_each_pixel(text: &str, mut put: impl FnMut(u32, u32)) {
    for (i, c) in text.chars().enumerate() {
        let drop = if DESCENDERS.contains(c) { DESCENT } else { 0 };
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                    put(i as u32 * ADVANCE + col, row as u32 + drop);
                }
            }
        }
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, colour);
    }
}

/// Draws `text` left to right with its top-left corner at `(x, y)`; pixels outside the image are
/// skipped.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, colour: Rgb<u8>, scale: u32) {
    let s = scale.max(1) as i64;
    for_each_pixel(text, |col, row| {
        for dy in 0..s {
            for dx in 0..s {
                put(img, x + col as i64 * s + dx, y + row as i64 * s + dy, colour);
            }
        }
    });
}

/// Draws `text` turned 90° anticlockwise (reading bottom to top, as a y-axis name) with the
/// bottom-left corner of the turned text at `(x, y)`.
pub fn draw_text_up(img: &mut RgbImage, x: i64, y: i64, text: &str, colour: Rgb<u8>, scale: u32) {
    let s = scale.max(1) as i64;
    for_each_pixel(text, |col, row| {
        for dy in 0..s {
            for dx in 0..s {
                put(img, x + row as i64 * s + dy, y - col as i64 * s - dx, colour);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const INK: Rgb<u8> = Rgb([0, 0, 0]);

    /// The bounding box `(x0, y0, x1, y1)` (inclusive) of the inked pixels.
    fn ink_box(img: &RgbImage) -> Option<(u32, u32, u32, u32)> {
        let mut b: Option<(u32, u32, u32, u32)> = None;
        for (x, y, p) in img.enumerate_pixels() {
            if *p == INK {
                b = Some(match b {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
        b
    }

    #[test]
    fn text_lands_in_its_bounding_box() {
        let mut img = RgbImage::from_pixel(80, 40, Rgb([255, 255, 255]));
        draw_text(&mut img, 10, 20, "Hi", INK, 1);
        // H spans columns 0 and 4 on all 7 rows; i's last row is 01110 (columns 7..=9).
        assert_eq!(text_width("Hi", 1), 11);
        assert_eq!(ink_box(&img), Some((10, 20, 10 + 9, 20 + 6)));
        assert_eq!(*img.get_pixel(10, 20), INK);
        assert_eq!(*img.get_pixel(11, 20), Rgb([255, 255, 255]));
        assert_eq!(*img.get_pixel(14, 26), INK);

        let mut img = RgbImage::from_pixel(80, 40, Rgb([255, 255, 255]));
        draw_text(&mut img, 3, 4, "T", INK, 2);
        assert_eq!(ink_box(&img), Some((3, 4, 3 + 2 * 5 - 1, 4 + 2 * 7 - 1)));

        // "y" hangs below the line: its tail reaches the last of the 9 rows.
        let mut img = RgbImage::from_pixel(80, 40, Rgb([255, 255, 255]));
        draw_text(&mut img, 0, 0, "ay", INK, 1);
        assert_eq!(text_height(1), 9);
        assert_eq!(ink_box(&img), Some((0, 2, 10, 8)));

        // Turned: "T" occupies 7 columns to the right of x and 5 rows up from y.
        let mut img = RgbImage::from_pixel(80, 40, Rgb([255, 255, 255]));
        draw_text_up(&mut img, 5, 30, "T", INK, 1);
        assert_eq!(ink_box(&img), Some((5, 26, 11, 30)));
        // The bar of the T is its top row, which turns into the left column.
        assert!((26..=30).all(|y| *img.get_pixel(5, y) == INK));
    }

    #[test]
    fn every_glyph_is_drawn_distinct_and_in_range() {
        for (i, g) in GLYPHS.iter().enumerate() {
            assert!(g.iter().all(|r| *r < 1 << GLYPH_W), "glyph {i}");
            assert_eq!(g.iter().any(|r| *r != 0), i != 0, "glyph {:?}", char::from(32 + i as u8));
            for (j, h) in GLYPHS.iter().enumerate().skip(i + 1) {
                assert_ne!(g, h, "{:?} and {:?}", char::from(32 + i as u8), char::from(32 + j as u8));
            }
        }
        assert_eq!(glyph('é'), glyph('?'));
        assert_eq!(text_width("", 2), 0);
        // Drawing off the canvas is clipped, not a panic.
        let mut img = RgbImage::new(4, 4);
        draw_text(&mut img, -20, -3, "clipped", INK, 3);
        draw_text_up(&mut img, 2, 100, "clipped", INK, 1);
    }
}
