//! Small PNG plots drawn with the `image` crate: a line chart (training loss) and a scatter plot
//! (PCA of embeddings), with axes and light grid lines. There is no text: the report names the
//! axes, ranges and colours.

use std::path::Path;

use image::{Rgb, RgbImage};

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const AXIS: Rgb<u8> = Rgb([40, 40, 40]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);

/// Distinct colours for up to 10 classes (tab10), in class order.
pub const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// The plotting area of a `width × height` canvas with a margin, and the data ranges it shows.
struct Frame {
    img: RgbImage,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

impl Frame {
    fn new(width: u32, height: u32, x: (f64, f64), y: (f64, f64)) -> Self {
        let img = RgbImage::from_pixel(width, height, WHITE);
        let m = 40.0;
        let mut f = Self { img, left: m, right: width as f64 - m / 2.0, top: m / 2.0, bottom: height as f64 - m, x, y };
        for i in 1..5 {
            let t = i as f64 / 5.0;
            let gx = f.left + t * (f.right - f.left);
            let gy = f.top + t * (f.bottom - f.top);
            f.line((gx, f.top), (gx, f.bottom), GRID);
            f.line((f.left, gy), (f.right, gy), GRID);
        }
        // Zero lines where zero is in range.
        if x.0 < 0.0 && x.1 > 0.0 {
            let (zx, _) = f.to_px(0.0, y.0);
            f.line((zx, f.top), (zx, f.bottom), Rgb([170, 170, 170]));
        }
        if y.0 < 0.0 && y.1 > 0.0 {
            let (_, zy) = f.to_px(x.0, 0.0);
            f.line((f.left, zy), (f.right, zy), Rgb([170, 170, 170]));
        }
        f.line((f.left, f.top), (f.left, f.bottom), AXIS);
        f.line((f.left, f.bottom), (f.right, f.bottom), AXIS);
        for i in 0..=5 {
            let t = i as f64 / 5.0;
            let gx = f.left + t * (f.right - f.left);
            let gy = f.top + t * (f.bottom - f.top);
            f.line((gx, f.bottom), (gx, f.bottom + 5.0), AXIS);
            f.line((f.left - 5.0, gy), (f.left, gy), AXIS);
        }
        f
    }

    fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        let tx = (x - self.x.0) / (self.x.1 - self.x.0);
        let ty = (y - self.y.0) / (self.y.1 - self.y.0);
        (self.left + tx * (self.right - self.left), self.bottom - ty * (self.bottom - self.top))
    }

    fn put(&mut self, x: i64, y: i64, c: Rgb<u8>) {
        if x >= 0 && y >= 0 && (x as u32) < self.img.width() && (y as u32) < self.img.height() {
            self.img.put_pixel(x as u32, y as u32, c);
        }
    }

    /// A straight line between two pixel positions (DDA, one pixel wide).
    fn line(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb<u8>) {
        let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as usize;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            self.put(x.round() as i64, y.round() as i64, c);
        }
    }

    fn thick_line(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb<u8>) {
        for (dx, dy) in [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5)] {
            self.line((a.0 + dx, a.1 + dy), (b.0 + dx, b.1 + dy), c);
        }
    }

    fn dot(&mut self, p: (f64, f64), radius: f64, c: Rgb<u8>) {
        let r = radius.ceil() as i64;
        let (cx, cy) = (p.0.round() as i64, p.1.round() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                if ((dx * dx + dy * dy) as f64) <= radius * radius {
                    self.put(cx + dx, cy + dy, c);
                }
            }
        }
    }
}

/// One series of a line chart: points `(x, y)` and a colour.
pub struct Series<'a> {
    pub points: &'a [(f64, f64)],
    pub colour: [u8; 3],
}

/// Line chart of several series on common axes (ranges from the data), saved as PNG.
pub fn line_chart(path: &Path, series: &[Series<'_>], width: u32, height: u32) -> Result<(), String> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let mut f = Frame::new(width, height, range(xs), range(ys));
    for s in series {
        let c = Rgb(s.colour);
        let pts: Vec<(f64, f64)> =
            s.points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).map(|p| f.to_px(p.0, p.1)).collect();
        if pts.len() == 1 {
            f.dot(pts[0], 2.0, c);
        }
        for w in pts.windows(2) {
            f.thick_line(w[0], w[1], c);
        }
    }
    save(&f.img, path)
}

/// Scatter plot of points `(x, y)` coloured by class (`PALETTE[class % 10]`), saved as PNG.
pub fn scatter(path: &Path, points: &[(f64, f64)], classes: &[usize], width: u32, height: u32) -> Result<(), String> {
    let mut f = Frame::new(width, height, range(points.iter().map(|p| p.0)), range(points.iter().map(|p| p.1)));
    for (p, &k) in points.iter().zip(classes) {
        let px = f.to_px(p.0, p.1);
        f.dot(px, 3.5, AXIS);
        f.dot(px, 2.6, Rgb(PALETTE[k % PALETTE.len()]));
    }
    save(&f.img, path)
}

fn save(img: &RgbImage, path: &Path) -> Result<(), String> {
    crate::atomic_write::write_atomically(path, |p| {
        img.save_with_format(p, image::ImageFormat::Png).map_err(std::io::Error::other)
    })
    .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The first two principal components of the rows of `x` (`n × dim`, row-major), as
/// coordinates per row: the top eigenvectors of the centred Gram matrix (power iteration with
/// deflation), scaled by the square roots of their eigenvalues.
pub fn pca_2d(x: &[f32], n: usize, dim: usize) -> Vec<(f64, f64)> {
    if n == 0 || dim == 0 {
        return vec![];
    }
    let mut mean = vec![0f64; dim];
    for r in 0..n {
        for (m, v) in mean.iter_mut().zip(&x[r * dim..(r + 1) * dim]) {
            *m += *v as f64 / n as f64;
        }
    }
    let centred: Vec<f64> = (0..n * dim).map(|i| x[i] as f64 - mean[i % dim]).collect();
    let mut gram = vec![0f64; n * n];
    for i in 0..n {
        for j in i..n {
            let a = &centred[i * dim..(i + 1) * dim];
            let b = &centred[j * dim..(j + 1) * dim];
            let d: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
            gram[i * n + j] = d;
            gram[j * n + i] = d;
        }
    }
    let mut units: Vec<Vec<f64>> = Vec::new();
    let mut coords: Vec<Vec<f64>> = Vec::new();
    for c in 0..2 {
        let mut v: Vec<f64> = (0..n).map(|i| 1.0 + ((i * 7919 + c * 104_729) % 97) as f64 / 97.0).collect();
        let mut lambda = 0.0;
        for _ in 0..300 {
            let mut w: Vec<f64> = (0..n).map(|i| (0..n).map(|j| gram[i * n + j] * v[j]).sum()).collect();
            for u in &units {
                let d: f64 = u.iter().zip(&w).map(|(a, b)| a * b).sum();
                for (wi, ui) in w.iter_mut().zip(u) {
                    *wi -= d * ui;
                }
            }
            let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm < 1e-300 {
                break;
            }
            lambda = norm;
            v = w.into_iter().map(|a| a / norm).collect();
        }
        coords.push(v.iter().map(|a| a * lambda.sqrt()).collect());
        units.push(v);
    }
    (0..n).map(|i| (coords[0][i], coords[1][i])).collect()
}
