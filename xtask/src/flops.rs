//! FLOP counts of the backbone benches and the fraction of the measured GEMM ceiling they reach.
//!
//! ViT-S/16 at 224 × 224 (D = 384, 12 blocks, 6 heads, MLP 1536, N = 197 tokens) per image,
//! counting a multiply-add as 2 FLOPs and only the matrix products (norms, softmax and GELU are
//! < 1 %): patch embedding 2·196·(C·256)·D; per block qkv 2·N·D·3D, q·kᵀ and attn·v 2·2·N²·D,
//! projection 2·N·D², MLP 2·2·N·D·4D. That is 9.12 GFLOP (C = 1) to 9.24 GFLOP (C = 4) per image
//! (the "4.6 GFLOPs" usually quoted for ViT-S/16 counts multiply-adds).
//! The ceiling is the `…_gemm_m1576k384n1536` bench: the forward's largest product alone.

use std::collections::BTreeMap;

const D: f64 = 384.0;
const TOKENS: f64 = 197.0;
const PATCHES: f64 = 196.0;
const BLOCKS: f64 = 12.0;

/// FLOPs of one ViT-S/16 224 × 224 inference forward of `batch` images with `channels` channels.
pub fn vit_small_p16_224_flops(batch: usize, channels: usize) -> f64 {
    let patch_embed = 2.0 * PATCHES * (channels as f64 * 256.0) * D;
    let per_block = 2.0 * TOKENS * D * (3.0 * D + D + 8.0 * D) + 4.0 * TOKENS * TOKENS * D;
    batch as f64 * (patch_embed + BLOCKS * per_block)
}

/// FLOPs of the GEMM-ceiling bench.
const GEMM_FLOPS: f64 = 2.0 * 1576.0 * 384.0 * 1536.0;

/// `(batch, channels)` of a forward bench name such as `cpu_vit_small_p16_b32_224_c4`.
fn forward_shape(name: &str, device: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix(&format!("{device}_vit_small_p16_b"))?;
    let (batch, rest) = rest.split_once("_224_c")?;
    Some((batch.parse().ok()?, rest.parse().ok()?))
}

/// One row per forward bench: (name, GFLOP/s of cellino, fraction of the GEMM ceiling, GFLOP/s
/// of PyTorch if measured). Empty when the ceiling bench did not run.
pub fn gemm_fractions(
    ours: &BTreeMap<String, f64>,
    torch: &BTreeMap<String, f64>,
    device: &str,
) -> Vec<(String, f64, f64, Option<f64>)> {
    let Some(gemm) = ours.get(&format!("{device}_gemm_m1576k384n1536")) else { return vec![] };
    let ceiling = GEMM_FLOPS / gemm;
    ours.iter()
        .filter_map(|(name, secs)| {
            let (b, c) = forward_shape(name, device)?;
            let flops = vit_small_p16_224_flops(b, c);
            Some((name.clone(), flops / secs / 1e9, flops / secs / ceiling, torch.get(name).map(|t| flops / t / 1e9)))
        })
        .collect()
}

/// The GEMM ceiling in GFLOP/s, when its bench ran.
pub fn ceiling_gflops(ours: &BTreeMap<String, f64>, device: &str) -> Option<f64> {
    ours.get(&format!("{device}_gemm_m1576k384n1536")).map(|s| GEMM_FLOPS / s / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_small_flops_are_twice_the_quoted_4_6_gmacs() {
        let one = vit_small_p16_224_flops(1, 3) / 1e9;
        assert!((one - 9.2).abs() < 0.05, "{one}");
        assert_eq!(vit_small_p16_224_flops(8, 4), 8.0 * vit_small_p16_224_flops(1, 4));
    }

    #[test]
    fn fractions_use_the_ceiling_and_skip_other_benches() {
        let ours = BTreeMap::from([
            ("cpu_gemm_m1576k384n1536".to_string(), GEMM_FLOPS / 100e9), // 100 GFLOP/s
            ("cpu_vit_small_p16_b8_224_c4".to_string(), vit_small_p16_224_flops(8, 4) / 50e9),
            ("cpu_vit_small_p16_b8_224_c4_fwdbwd".to_string(), 1.0),
        ]);
        let rows = gemm_fractions(&ours, &BTreeMap::new(), "cpu");
        assert_eq!(rows.len(), 1);
        assert!((rows[0].1 - 50.0).abs() < 1e-9 && (rows[0].2 - 0.5).abs() < 1e-12 && rows[0].3.is_none());
    }
}
