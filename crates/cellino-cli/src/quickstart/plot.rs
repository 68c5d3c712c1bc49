//! Small PNG plots drawn with the `image` crate: a line chart (training loss) and a scatter plot
//! (PCA of embeddings), with a title, axis names, the data's extreme values at the axis ticks, light
//! grid lines and a legend, in the built-in bitmap font ([`super::font`]).

use std::path::Path;

use image::{Rgb, RgbImage};

use super::font::{draw_text, draw_text_up, text_height, text_width};

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

/// The text of a plot.
pub struct Labels<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Mark {
    Line,
    Dot,
}

/// The plotting area of a `width × height` canvas with margins for the text, and the data ranges it shows.
struct Frame {
    img: RgbImage,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
}

/// The smallest and largest finite value, if any.
fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The axis range: the data extent with 5 % padding so no point sits on the frame.
fn padded(extent: Option<(f64, f64)>) -> (f64, f64) {
    let Some((lo, hi)) = extent else { return (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// A short tick label: about 3 significant digits, exponent notation for very large or small values.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    // Three significant digits.
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

const PAD: f64 = 6.0;

impl Frame {
    /// A canvas with the title, the axis names and a right-hand panel `legend_width` wide; the
    /// ticks are labelled with the data extents `xe` and `ye`.
    fn new(
        width: u32,
        height: u32,
        xe: Option<(f64, f64)>,
        ye: Option<(f64, f64)>,
        labels: &Labels<'_>,
        legend_width: u32,
    ) -> Self {
        let mut img = RgbImage::from_pixel(width, height, WHITE);
        let title_scale = if text_width(labels.title, 2) + 20 <= width { 2 } else { 1 };
        let th = text_height(title_scale) as f64;
        let tw = text_width(labels.title, title_scale) as f64;
        draw_text(&mut img, ((width as f64 - tw) / 2.0).max(2.0) as i64, PAD as i64, labels.title, AXIS, title_scale);

        let y_ticks: Vec<String> = ye.map_or(vec![], |(lo, hi)| vec![tick_label(lo), tick_label(hi)]);
        let tick_w = y_ticks.iter().map(|t| text_width(t, 1)).max().unwrap_or(0) as f64;
        let line = text_height(1) as f64;
        let left = PAD + line + PAD + tick_w + PAD + 5.0;
        let (top, bottom) = (PAD + th + 2.0 * PAD, height as f64 - (5.0 + PAD + line + PAD + line + PAD));
        let right = width as f64 - PAD - legend_width as f64;
        let mut f = Self { img, left, right, top, bottom, x: padded(xe), y: padded(ye) };
        for i in 1..5 {
            let t = i as f64 / 5.0;
            let gx = f.left + t * (f.right - f.left);
            let gy = f.top + t * (f.bottom - f.top);
            f.line((gx, f.top), (gx, f.bottom), GRID);
            f.line((f.left, gy), (f.right, gy), GRID);
        }
        // Zero lines where zero is in range.
        let (x, y) = (f.x, f.y);
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

        // Ticks at the data's smallest and largest value, labelled with them.
        for v in xe.map_or(vec![], |(lo, hi)| if lo == hi { vec![lo] } else { vec![lo, hi] }) {
            let (px, _) = f.to_px(v, y.0);
            f.line((px, f.bottom), (px, f.bottom + 5.0), AXIS);
            let label = tick_label(v);
            let w = text_width(&label, 1) as f64;
            let lx = (px - w / 2.0).clamp(0.0, (width as f64 - w).max(0.0));
            draw_text(&mut f.img, lx as i64, (f.bottom + 5.0 + PAD) as i64, &label, AXIS, 1);
        }
        for v in ye.map_or(vec![], |(lo, hi)| if lo == hi { vec![lo] } else { vec![lo, hi] }) {
            let (_, py) = f.to_px(x.0, v);
            f.line((f.left - 5.0, py), (f.left, py), AXIS);
            let label = tick_label(v);
            let w = text_width(&label, 1) as f64;
            draw_text(
                &mut f.img,
                (f.left - 5.0 - PAD / 2.0 - w) as i64,
                (py - line / 2.0).round() as i64,
                &label,
                AXIS,
                1,
            );
        }
        // Axis names: x centred under the tick labels, y turned, centred along the axis.
        let xw = text_width(labels.x, 1) as f64;
        let xn = ((f.left + f.right - xw) / 2.0).max(0.0);
        draw_text(&mut f.img, xn as i64, (f.bottom + 5.0 + PAD + line + PAD) as i64, labels.x, AXIS, 1);
        let yw = text_width(labels.y, 1) as f64;
        let yn = ((f.top + f.bottom + yw) / 2.0).min(height as f64 - 1.0);
        draw_text_up(&mut f.img, PAD as i64, yn as i64, labels.y, AXIS, 1);
        f
    }

    /// The legend in the right-hand panel: a mark in each colour and its name, one per line.
    fn legend(&mut self, entries: &[([u8; 3], &str)], mark: Mark) {
        let x = self.right + 2.0 * PAD;
        let step = text_height(1) as f64 + 5.0;
        for (i, (colour, name)) in entries.iter().enumerate() {
            let y = self.top + i as f64 * step;
            let mid = y + text_height(1) as f64 / 2.0;
            match mark {
                Mark::Line => self.thick_line((x, mid - 0.5), (x + 10.0, mid - 0.5), Rgb(*colour)),
                Mark::Dot => {
                    self.dot((x + 5.0, mid), 3.5, AXIS);
                    self.dot((x + 5.0, mid), 2.6, Rgb(*colour));
                }
            }
            draw_text(&mut self.img, (x + 16.0) as i64, y as i64, name, AXIS, 1);
        }
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

/// Width of the legend panel for these names (mark, gap, text, margin).
fn legend_width<'a>(names: impl Iterator<Item = &'a str>) -> u32 {
    names.map(|n| text_width(n, 1)).max().map_or(0, |w| w + 16 + 2 * PAD as u32)
}

/// One series of a line chart: points `(x, y)`, a colour and its legend name.
pub struct Series<'a> {
    pub points: &'a [(f64, f64)],
    pub colour: [u8; 3],
    pub name: &'a str,
}

/// Line chart of several series on common axes (ranges from the data), saved as PNG.
pub fn line_chart(
    path: &Path,
    series: &[Series<'_>],
    labels: &Labels<'_>,
    width: u32,
    height: u32,
) -> Result<(), String> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let legend = legend_width(series.iter().map(|s| s.name));
    let mut f = Frame::new(width, height, extent(xs), extent(ys), labels, legend);
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
    let entries: Vec<([u8; 3], &str)> = series.iter().map(|s| (s.colour, s.name)).collect();
    f.legend(&entries, Mark::Line);
    save(&f.img, path)
}

/// Scatter plot of points `(x, y)` coloured by class (`PALETTE[class % 10]`) with a legend of the
/// `class_names` (classes without a name are called `class <k>`), saved as PNG.
pub fn scatter(
    path: &Path,
    points: &[(f64, f64)],
    classes: &[usize],
    class_names: &[String],
    labels: &Labels<'_>,
    width: u32,
    height: u32,
) -> Result<(), String> {
    let n_classes = classes.iter().map(|k| k + 1).max().unwrap_or(0).max(class_names.len());
    let names: Vec<String> =
        (0..n_classes).map(|k| class_names.get(k).cloned().unwrap_or_else(|| format!("class {k}"))).collect();
    let legend = legend_width(names.iter().map(String::as_str));
    let (xe, ye) = (extent(points.iter().map(|p| p.0)), extent(points.iter().map(|p| p.1)));
    let mut f = Frame::new(width, height, xe, ye, labels, legend);
    for (p, &k) in points.iter().zip(classes) {
        let px = f.to_px(p.0, p.1);
        f.dot(px, 3.5, AXIS);
        f.dot(px, 2.6, Rgb(PALETTE[k % PALETTE.len()]));
    }
    let entries: Vec<([u8; 3], &str)> =
        names.iter().enumerate().map(|(k, n)| (PALETTE[k % PALETTE.len()], n.as_str())).collect();
    f.legend(&entries, Mark::Dot);
    save(&f.img, path)
}

fn save(img: &RgbImage, path: &Path) -> Result<(), String> {
    cellino_data::write_atomically(path, |p| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dark(p: &Rgb<u8>) -> bool {
        *p == AXIS
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(3.0), "3");
        assert_eq!(tick_label(10.53), "10.5");
        assert_eq!(tick_label(-0.25), "-0.25");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(1234.4), "1234");
        assert_eq!(tick_label(2.5e-5), "2.5e-5");
        assert_eq!(tick_label(-0.00123), "-0.00123");
        assert_eq!(tick_label(0.1), "0.1");
    }

    #[test]
    fn plots_have_title_axis_names_ticks_and_legend() {
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels { title: "PCA of test embeddings", x: "PC 1", y: "PC 2" };
        let points = [(0.0, 0.0), (1.0, 2.0), (-1.5, 0.5), (0.5, -1.0)];
        let names: Vec<String> = ["nucleoplasm", "cytosol"].map(String::from).to_vec();
        let path = dir.path().join("pca.png");
        scatter(&path, &points, &[0, 1, 0, 2], &names, &labels, 400, 300).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (400, 300));
        // Title: dark pixels in the top band, centred.
        let title_w = text_width(labels.title, 2);
        let title_x = (400 - title_w) / 2;
        let in_title = (0..20).flat_map(|y| (0..400).map(move |x| (x, y))).filter(|&(x, y)| dark(img.get_pixel(x, y)));
        let xs: Vec<u32> = in_title.map(|p| p.0).collect();
        assert!(!xs.is_empty());
        assert!(xs.iter().all(|&x| x >= title_x && x < title_x + title_w), "{xs:?}");
        // Legend: a dot of each class colour (class 2 has no name: "class 2") right of the plot area.
        let legend_x = 400 - legend_width(["nucleoplasm", "cytosol", "class 2"].into_iter());
        for colour in &PALETTE[..3] {
            assert!(img.enumerate_pixels().any(|(x, y, p)| x >= legend_x && y < 100 && p.0 == *colour), "{colour:?}");
        }
        // Axis name of y: turned text in the leftmost columns.
        assert!((0..300).any(|y| (0..14).any(|x| dark(img.get_pixel(x, y)))));

        let path = dir.path().join("loss.png");
        let loss = [(1.0, 10.5), (2.0, 9.0), (3.0, 8.25)];
        let series = [Series { points: &loss, colour: [31, 119, 180], name: "loss" }];
        let labels = Labels { title: "Training loss", x: "iteration", y: "total loss" };
        line_chart(&path, &series, &labels, 320, 240).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (320, 240));
        // Tick values and the x-axis name below the plot area.
        assert!((200..240).any(|y| (0..320).any(|x| dark(img.get_pixel(x, y)))));
        // A single point and an empty plot still render.
        line_chart(&path, &[Series { points: &loss[..1], colour: [0, 0, 0], name: "one" }], &labels, 200, 150).unwrap();
        scatter(&path, &[], &[], &[], &labels, 200, 150).unwrap();
    }
}
