//! Counter-based seeding: one independent RNG per (seed, epoch, index, stream).
//!
//! candle's own RNG cannot be seeded, so every random draw of this crate comes from a
//! [`StdRng`] passed in by the caller. The loader derives that RNG from the run seed, the epoch
//! and the sample's dataset index alone, so a sample's augmentation does not depend on which
//! thread computes it, in which order, or where a run was resumed.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// What an RNG made by [`keyed_rng`] is used for; distinct streams never share draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RngStream {
    /// The augmentation of one sample (`index` = dataset index).
    Sample,
    /// The permutation of an epoch (`index` unused, 0).
    Shuffle,
    /// The iBOT masks of one batch (`index` = position of the batch's first sample in the epoch).
    Masks,
}

impl RngStream {
    fn tag(self) -> u64 {
        match self {
            Self::Sample => 0x5A4D_504C_4531,
            Self::Shuffle => 0x5348_5546_464C,
            Self::Masks => 0x4D41_534B_5321,
        }
    }
}

/// SplitMix64 finaliser: a bijective 64-bit mixer with full avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The RNG for (`seed`, `epoch`, `index`, `stream`): the same key always gives the same sequence,
/// different keys give independent-looking sequences.
///
/// ```
/// use cellino_data::{keyed_rng, RngStream};
/// use rand::Rng;
/// let a: u64 = keyed_rng(7, 2, 41, RngStream::Sample).random();
/// let b: u64 = keyed_rng(7, 2, 41, RngStream::Sample).random();
/// let c: u64 = keyed_rng(7, 2, 42, RngStream::Sample).random();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
pub fn keyed_rng(seed: u64, epoch: u64, index: u64, stream: RngStream) -> StdRng {
    let mut state = mix(seed ^ 0x6365_6C6C_696E_6F21);
    for word in [epoch, index, stream.tag()] {
        state = mix(state.wrapping_add(0x9E37_79B9_7F4A_7C15) ^ mix(word));
    }
    let mut key = [0u8; 32];
    for (k, chunk) in key.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(
            &mix(state.wrapping_add((k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))).to_le_bytes(),
        );
    }
    StdRng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn keys_are_independent() {
        let draw = |s, e, i, st| keyed_rng(s, e, i, st).random::<u64>();
        let base = draw(1, 0, 0, RngStream::Sample);
        assert_eq!(base, draw(1, 0, 0, RngStream::Sample));
        for other in [
            draw(2, 0, 0, RngStream::Sample),
            draw(1, 1, 0, RngStream::Sample),
            draw(1, 0, 1, RngStream::Sample),
            draw(1, 0, 0, RngStream::Shuffle),
            draw(1, 0, 0, RngStream::Masks),
        ] {
            assert_ne!(base, other);
        }
        // Swapping epoch and index must not collide.
        assert_ne!(draw(1, 3, 5, RngStream::Sample), draw(1, 5, 3, RngStream::Sample));
    }
}
