//! Rendering one synthetic cell: geometry, the structural channels, the protein patterns and the
//! class-independent intensity normalisation of the protein channel.

use std::f32::consts::{PI, TAU};

use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// Morphology of a synthetic "cell line"; lengths are fractions of the crop size.
pub(crate) struct LineShape {
    /// Mean radius of the cell (geometric mean of the semi-axes).
    pub radius: (f32, f32),
    /// Long / short axis of the cell.
    pub aspect: (f32, f32),
    /// Nucleus radius / cell radius.
    pub nucleus: (f32, f32),
    /// Amplitude of the boundary's low-order harmonics.
    pub irregularity: f32,
}

pub(crate) const LINE_SHAPES: [LineShape; 4] = [
    // round
    LineShape { radius: (0.26, 0.31), aspect: (1.0, 1.2), nucleus: (0.45, 0.55), irregularity: 0.05 },
    // elongated
    LineShape { radius: (0.22, 0.27), aspect: (1.7, 2.3), nucleus: (0.42, 0.5), irregularity: 0.06 },
    // large_flat
    LineShape { radius: (0.32, 0.37), aspect: (1.1, 1.4), nucleus: (0.32, 0.4), irregularity: 0.12 },
    // small_compact
    LineShape { radius: (0.18, 0.22), aspect: (1.0, 1.25), nucleus: (0.55, 0.65), irregularity: 0.04 },
];

/// An ellipse with a wavy boundary, in pixel units.
struct Blob {
    cx: f32,
    cy: f32,
    cos: f32,
    sin: f32,
    a: f32,
    b: f32,
    /// (amplitude, cos phase, sin phase) of the boundary harmonics of order 2, 3 and 4.
    harmonics: [(f32, f32, f32); 3],
}

impl Blob {
    fn random(rng: &mut StdRng, cx: f32, cy: f32, angle: f32, radius: f32, aspect: f32, irregular: f32) -> Self {
        let s = aspect.sqrt();
        let mut harmonics = [(0.0, 0.0, 0.0); 3];
        for (k, h) in harmonics.iter_mut().enumerate() {
            let amp = irregular * rng.random_range(0.3f32..1.0) / (k as f32 + 1.0);
            let phase = rng.random_range(0.0..TAU);
            *h = (amp, phase.cos(), phase.sin());
        }
        Self { cx, cy, cos: angle.cos(), sin: angle.sin(), a: radius * s, b: radius / s, harmonics }
    }

    /// Normalised radius: < 1 inside, 1 on the boundary.
    fn rho(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = (dx * self.cos + dy * self.sin) / self.a;
        let v = (-dx * self.sin + dy * self.cos) / self.b;
        let r = (u * u + v * v).sqrt();
        if r == 0.0 {
            return 0.0;
        }
        // cos(kφ + phase) for k = 2, 3, 4 from cos φ and sin φ (no trigonometric calls).
        let (c1, s1) = (u / r, v / r);
        let (mut ck, mut sk) = (c1 * c1 - s1 * s1, 2.0 * c1 * s1);
        let mut wave = 0.0;
        for &(amp, cos_ph, sin_ph) in &self.harmonics {
            wave += amp * (ck * cos_ph - sk * sin_ph);
            (ck, sk) = (ck * c1 - sk * s1, sk * c1 + ck * s1);
        }
        r / (1.0 + wave)
    }

    /// A point at normalised radius `r` and angle `phi` (ignoring the boundary harmonics).
    fn point(&self, r: f32, phi: f32) -> (f32, f32) {
        let (u, v) = (r * self.a * phi.cos(), r * self.b * phi.sin());
        (self.cx + u * self.cos - v * self.sin, self.cy + u * self.sin + v * self.cos)
    }

    fn mean_radius(&self) -> f32 {
        (self.a * self.b).sqrt()
    }
}

/// Smooth step from 1 (inside) to 0 (outside) over about `width` pixels around `rho == 1`.
fn soft_inside(rho: f32, radius_px: f32, width: f32) -> f32 {
    let t = ((1.0 - rho) * radius_px / width + 0.5).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Value noise in [0, 1]: a random `grid`² lattice, interpolated with smoothstep weights.
fn value_noise(rng: &mut StdRng, size: usize, grid: usize, out: &mut [f32], weight: f32) {
    let g = grid + 1;
    let lattice: Vec<f32> = (0..g * g).map(|_| rng.random::<f32>()).collect();
    let scale = grid as f32 / size as f32;
    for y in 0..size {
        let fy = (y as f32 + 0.5) * scale;
        let iy = (fy as usize).min(grid - 1);
        let ty = fy - iy as f32;
        let ty = ty * ty * (3.0 - 2.0 * ty);
        for x in 0..size {
            let fx = (x as f32 + 0.5) * scale;
            let ix = (fx as usize).min(grid - 1);
            let tx = fx - ix as f32;
            let tx = tx * tx * (3.0 - 2.0 * tx);
            let l = |j: usize, i: usize| lattice[j * g + i];
            let top = l(iy, ix) + (l(iy, ix + 1) - l(iy, ix)) * tx;
            let bottom = l(iy + 1, ix) + (l(iy + 1, ix + 1) - l(iy + 1, ix)) * tx;
            out[y * size + x] += weight * (top + (bottom - top) * ty);
        }
    }
}

/// Adds an isotropic Gaussian spot of peak `amp` and width `sigma` pixels at (`x`, `y`).
fn splat(buf: &mut [f32], size: usize, x: f32, y: f32, sigma: f32, amp: f32) {
    let reach = 3.0 * sigma;
    let x0 = (x - reach).floor().max(0.0) as usize;
    let y0 = (y - reach).floor().max(0.0) as usize;
    let x1 = ((x + reach).ceil().max(0.0) as usize).min(size);
    let y1 = ((y + reach).ceil().max(0.0) as usize).min(size);
    let k = -0.5 / (sigma * sigma);
    for py in y0..y1 {
        let dy = py as f32 + 0.5 - y;
        let row = &mut buf[py * size..(py + 1) * size];
        for (px, v) in row.iter_mut().enumerate().take(x1).skip(x0) {
            let dx = px as f32 + 0.5 - x;
            *v += amp * ((dx * dx + dy * dy) * k).exp();
        }
    }
}

/// A curved stroke: `steps` one-pixel steps from (`x`, `y`) in direction `angle`, the direction
/// wandering by up to `wander` radians a step; stops where `keep` is false.
#[allow(clippy::too_many_arguments)]
fn stroke(
    buf: &mut [f32],
    size: usize,
    rng: &mut StdRng,
    (mut x, mut y): (f32, f32),
    mut angle: f32,
    steps: usize,
    wander: f32,
    sigma: f32,
    amp: f32,
    keep: impl Fn(f32, f32) -> bool,
) {
    for _ in 0..steps {
        if !keep(x, y) {
            break;
        }
        splat(buf, size, x, y, sigma, amp);
        angle += rng.random_range(-wander..=wander);
        x += angle.cos();
        y += angle.sin();
    }
}

/// Everything class-independent about one cell, per pixel.
pub(crate) struct CellFrame {
    size: usize,
    cell: Blob,
    nucleus: Blob,
    /// Soft cell and nucleus masks in [0, 1].
    pub cell_mask: Vec<f32>,
    pub nuc_mask: Vec<f32>,
    cell_rho: Vec<f32>,
    nuc_rho: Vec<f32>,
}

impl CellFrame {
    pub(crate) fn new(rng: &mut StdRng, size: usize, shape: &LineShape) -> Self {
        let s = size as f32;
        let jitter = 0.06 * s;
        let (cx, cy) = (0.5 * s + rng.random_range(-jitter..=jitter), 0.5 * s + rng.random_range(-jitter..=jitter));
        let angle = rng.random_range(0.0..PI);
        let radius = s * rng.random_range(shape.radius.0..=shape.radius.1);
        let aspect = rng.random_range(shape.aspect.0..=shape.aspect.1);
        let cell = Blob::random(rng, cx, cy, angle, radius, aspect, shape.irregularity);
        // The nucleus: rounder than the cell, roughly aligned with it, slightly off-centre.
        let nuc_radius = radius * rng.random_range(shape.nucleus.0..=shape.nucleus.1);
        let nuc_aspect = 1.0 + (aspect - 1.0) * 0.5 * rng.random_range(0.5f32..1.0);
        let off = (radius - nuc_radius) * 0.35;
        let (ox, oy) = (rng.random_range(-off..=off), rng.random_range(-off..=off));
        let nangle = angle + rng.random_range(-0.3f32..0.3);
        let nucleus = Blob::random(rng, cx + ox, cy + oy, nangle, nuc_radius, nuc_aspect, 0.04);

        let n = size * size;
        let (mut cell_rho, mut nuc_rho) = (vec![0.0; n], vec![0.0; n]);
        let (mut cell_mask, mut nuc_mask) = (vec![0.0; n], vec![0.0; n]);
        let (rc, rn) = (cell.mean_radius(), nucleus.mean_radius());
        for y in 0..size {
            for x in 0..size {
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let i = y * size + x;
                cell_rho[i] = cell.rho(fx, fy);
                nuc_rho[i] = nucleus.rho(fx, fy);
                cell_mask[i] = soft_inside(cell_rho[i], rc, 1.5);
                nuc_mask[i] = soft_inside(nuc_rho[i], rn, 1.2) * cell_mask[i];
            }
        }
        Self { size, cell, nucleus, cell_mask, nuc_mask, cell_rho, nuc_rho }
    }

    fn cytoplasm(&self, i: usize) -> f32 {
        self.cell_mask[i] * (1.0 - self.nuc_mask[i])
    }

    fn in_cell(&self, x: f32, y: f32) -> bool {
        self.cell.rho(x, y) < 0.97
    }

    /// A random point of the cytoplasm (rejection sampling, falling back to the cell centre).
    fn cytoplasm_point(&self, rng: &mut StdRng) -> (f32, f32) {
        for _ in 0..32 {
            let p = self.cell.point(rng.random::<f32>().sqrt() * 0.95, rng.random_range(0.0..TAU));
            if self.nucleus.rho(p.0, p.1) > 1.15 && self.in_cell(p.0, p.1) {
                return p;
            }
        }
        self.cell.point(0.75, rng.random_range(0.0..TAU))
    }

    /// The nucleus (DNA stain): textured, with a few chromocentres.
    pub(crate) fn nucleus_channel(&self, rng: &mut StdRng, out: &mut [f32]) {
        let mut tex = vec![0.0; out.len()];
        value_noise(rng, self.size, 6, &mut tex, 0.6);
        value_noise(rng, self.size, 12, &mut tex, 0.4);
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.nuc_mask[i] * (0.65 + 0.35 * tex[i]);
        }
        let rn = self.nucleus.mean_radius();
        for _ in 0..rng.random_range(3..8) {
            let (x, y) = self.nucleus.point(rng.random::<f32>().sqrt() * 0.8, rng.random_range(0.0..TAU));
            splat(out, self.size, x, y, 0.08 * rn + 0.4, 0.25);
        }
    }

    /// Microtubules: wavy filaments radiating from a centrosome next to the nucleus.
    pub(crate) fn microtubule_channel(&self, rng: &mut StdRng, out: &mut [f32]) {
        let (x0, y0) = self.nucleus.point(1.1, rng.random_range(0.0..TAU));
        let reach = (2.5 * self.cell.a) as usize + 4;
        for _ in 0..rng.random_range(14..26) {
            let angle = rng.random_range(0.0..TAU);
            stroke(out, self.size, rng, (x0, y0), angle, reach, 0.12, 0.7, 0.35, |x, y| self.in_cell(x, y));
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = (*o * self.cell_mask[i]).min(1.0) + 0.08 * self.cell_mask[i];
        }
    }

    /// ER: a perinuclear network that fades towards the cell edge.
    pub(crate) fn er_channel(&self, rng: &mut StdRng, out: &mut [f32]) {
        let mut tex = vec![0.0; out.len()];
        value_noise(rng, self.size, 10, &mut tex, 0.5);
        value_noise(rng, self.size, 20, &mut tex, 0.5);
        for (i, o) in out.iter_mut().enumerate() {
            let fade = (-(self.nuc_rho[i] - 1.0).max(0.0) * 1.1).exp();
            *o = self.cell_mask[i] * (1.0 - 0.75 * self.nuc_mask[i]) * fade * (0.45 + 0.55 * tex[i]);
        }
    }

    /// Extra (structural, class-independent) channels: actin, Golgi, lysosome-like, peroxisome-like.
    pub(crate) fn extra_channel(&self, rng: &mut StdRng, kind: usize, out: &mut [f32]) {
        match kind % 4 {
            0 => {
                // Actin: cortex at the cell edge plus parallel stress fibres.
                let rc = self.cell.mean_radius();
                for (i, o) in out.iter_mut().enumerate() {
                    let d = (self.cell_rho[i] - 0.95) * rc / 1.5;
                    *o = 0.6 * (-d * d).exp() + 0.05 * self.cell_mask[i];
                }
                let angle = rng.random_range(0.0..PI);
                for _ in 0..rng.random_range(3..7) {
                    let start = self.cell.point(rng.random_range(0.0f32..0.7), rng.random_range(0.0..TAU));
                    for dir in [angle, angle + PI] {
                        stroke(out, self.size, rng, start, dir, self.size, 0.02, 0.6, 0.3, |x, y| self.in_cell(x, y));
                    }
                }
            }
            1 => {
                // Golgi: a cluster of blobs on one side of the nucleus.
                let side = rng.random_range(0.0..TAU);
                for _ in 0..rng.random_range(5..10) {
                    let (x, y) = self.nucleus.point(rng.random_range(1.05f32..1.4), side + rng.random_range(-0.6..0.6));
                    splat(out, self.size, x, y, rng.random_range(0.8f32..1.6), 0.6);
                }
            }
            k => {
                // Small organelles: puncta all over the cytoplasm.
                let sigma = if k == 2 { 1.0 } else { 0.7 };
                for _ in 0..rng.random_range(10..30) {
                    let (x, y) = self.cytoplasm_point(rng);
                    splat(out, self.size, x, y, sigma, 0.7);
                }
                for (i, o) in out.iter_mut().enumerate() {
                    *o += 0.04 * self.cytoplasm(i);
                }
            }
        }
    }

    /// The protein channel's spatial pattern for localisation class `class` (any scale).
    pub(crate) fn protein_pattern(&self, rng: &mut StdRng, class: usize, out: &mut [f32]) {
        let size = self.size;
        let mut tex = vec![0.0; out.len()];
        value_noise(rng, size, 8, &mut tex, 0.5);
        value_noise(rng, size, 16, &mut tex, 0.5);
        let rn = self.nucleus.mean_radius();
        match class {
            0 => {
                // Nucleoplasm.
                for (i, o) in out.iter_mut().enumerate() {
                    *o = self.nuc_mask[i] * (0.6 + 0.4 * tex[i]);
                }
            }
            1 => {
                // Nucleoli: 2–5 bright bodies inside the nucleus.
                for _ in 0..rng.random_range(1..=4) {
                    let (x, y) = self.nucleus.point(rng.random::<f32>().sqrt() * 0.55, rng.random_range(0.0..TAU));
                    splat(out, size, x, y, rn * rng.random_range(0.06f32..0.1) + 0.4, 1.0);
                }
            }
            2 => {
                // Cytosol: diffuse, brighter where the cell is thicker (near the nucleus).
                for (i, o) in out.iter_mut().enumerate() {
                    let thickness = (-(self.nuc_rho[i] - 1.0).max(0.0) * 0.4).exp();
                    *o = self.cytoplasm(i) * (0.5 + 0.5 * thickness) * (0.75 + 0.25 * tex[i]);
                }
            }
            3 => {
                // Plasma membrane: a thin rim at the cell boundary.
                let rc = self.cell.mean_radius();
                for (i, o) in out.iter_mut().enumerate() {
                    let d = (self.cell_rho[i] - 0.96) * rc / 1.3;
                    *o = (-d * d).exp() * (0.7 + 0.3 * tex[i]) + 0.05 * self.cytoplasm(i);
                }
            }
            4 => {
                // Mitochondria-like: short curved filaments in the cytoplasm.
                for _ in 0..rng.random_range(18..32) {
                    let start = self.cytoplasm_point(rng);
                    let steps = rng.random_range(4..10);
                    let angle = rng.random_range(0.0..TAU);
                    stroke(out, size, rng, start, angle, steps, 0.35, 0.75, 0.6, |x, y| self.in_cell(x, y));
                }
                for (i, o) in out.iter_mut().enumerate() {
                    *o = *o * self.cell_mask[i] + 0.05 * self.cytoplasm(i) * tex[i];
                }
            }
            _ => {
                // Vesicles / puncta.
                for _ in 0..rng.random_range(15..40) {
                    let (x, y) = self.cytoplasm_point(rng);
                    splat(out, size, x, y, rng.random_range(0.7f32..1.2), rng.random_range(0.6f32..1.0));
                }
                for (i, o) in out.iter_mut().enumerate() {
                    *o = *o * self.cell_mask[i] + 0.05 * self.cytoplasm(i) * tex[i];
                }
            }
        }
        // A faint smooth haze over the cell and a glow around it, for every class: after rank
        // matching, the pixels that the pattern leaves dark are ordered smoothly (not by noise).
        let rc = self.cell.mean_radius();
        for (i, o) in out.iter_mut().enumerate() {
            let glow = (-(self.cell_rho[i] - 1.0).max(0.0) * rc / 4.0).exp();
            *o += 0.01 * self.cell_mask[i] * (1.0 - 0.5 * self.cell_rho[i].min(1.0)) + 0.003 * glow;
        }
    }
}

/// Replaces the values of `plane` by a class-independent intensity distribution, keeping their
/// order: the pixel of rank `r` (of `n`) gets `background + amplitude · ((r + ½) / n)^gamma`,
/// with `background`, `amplitude` and `gamma` drawn here (independently of the pattern).
///
/// After this the multiset of values (hence every per-channel statistic: mean, std, quantiles,
/// total intensity) has the same distribution whatever the localisation class; only where the
/// bright pixels are differs. Ties (e.g. the empty background) are broken by a tiny random jitter.
pub(crate) fn match_intensity_distribution(rng: &mut StdRng, plane: &mut [f32]) {
    let background = rng.random_range(0.01f32..0.05);
    let amplitude = rng.random_range(0.35f32..0.9);
    let gamma = rng.random_range(4.0f32..16.0);
    let mut order: Vec<(f32, u32)> =
        plane.iter().enumerate().map(|(i, &v)| (v + 1e-4 * rng.random::<f32>(), i as u32)).collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let n = plane.len() as f32;
    for (rank, &(_, i)) in order.iter().enumerate() {
        let q = (rank as f32 + 0.5) / n;
        plane[i as usize] = background + amplitude * q.powf(gamma);
    }
}

/// Scales a structural channel to a random brightness, adds a random background.
pub(crate) fn scale_structural(rng: &mut StdRng, plane: &mut [f32]) {
    let gain = rng.random_range(0.35f32..0.85);
    let background = rng.random_range(0.01f32..0.05);
    for v in plane.iter_mut() {
        *v = background + gain * v.min(1.0);
    }
}

/// Adds Gaussian noise of standard deviation `sigma` (fraction of the range).
pub(crate) fn add_noise(rng: &mut StdRng, plane: &mut [f32], sigma: f32) {
    let Ok(normal) = Normal::new(0.0f32, sigma) else { return };
    if sigma <= 0.0 {
        return;
    }
    for v in plane.iter_mut() {
        *v += normal.sample(rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn matched_values_do_not_depend_on_the_pattern() {
        // Two different patterns, the same draws: the same multiset of values, in the patterns' order.
        let mut a: Vec<f32> = (0..256).map(|i| ((i * 37) % 256) as f32).collect();
        let mut b: Vec<f32> = (0..256).map(|i| if i % 16 == 3 { 1.0 } else { 0.0 }).collect();
        let pattern_a = a.clone();
        match_intensity_distribution(&mut StdRng::seed_from_u64(5), &mut a);
        match_intensity_distribution(&mut StdRng::seed_from_u64(5), &mut b);
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sa.sort_by(f32::total_cmp);
        sb.sort_by(f32::total_cmp);
        assert_eq!(sa, sb);
        // Order kept: the brightest pattern pixel is the brightest output pixel.
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
        assert_eq!(argmax(&a), argmax(&pattern_a));
        assert!(b.iter().enumerate().filter(|(i, _)| i % 16 == 3).all(|(_, &v)| v >= sb[256 - 16]));
    }

    #[test]
    fn blob_rho_is_one_on_the_boundary() {
        let mut rng = StdRng::seed_from_u64(1);
        let blob = Blob::random(&mut rng, 30.0, 30.0, 0.7, 10.0, 1.5, 0.0);
        let (x, y) = blob.point(1.0, 2.0);
        assert!((blob.rho(x, y) - 1.0).abs() < 1e-4);
        assert_eq!(blob.rho(30.0, 30.0), 0.0);
    }
}
