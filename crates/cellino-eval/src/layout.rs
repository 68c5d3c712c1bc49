//! The column layout of an extracted feature vector (spec §4): which columns hold the CLS
//! token of which block and channel, and where the patch-token average is.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// What a run of columns holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// The final-norm CLS token of one block.
    Cls,
    /// The mean of the final-norm patch tokens of the last block.
    Avgpool,
}

/// One run of `embed_dim` columns `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub kind: SegmentKind,
    /// The backbone block (0-based, absolute: `depth − n_last_blocks … depth − 1`).
    pub block: usize,
    /// Bag of Channels: the input channel; `None` for a model that sees all channels.
    pub channel: Option<usize>,
    /// Bag of Channels: the channel's name, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    pub start: usize,
    pub end: usize,
}

impl Segment {
    /// The columns.
    pub fn columns(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// How a feature row is laid out (Cell-DINO `create_linear_input`, BoC as in
/// `get_intermediate_layers` with `channel_adaptive`):
///
/// * not BoC: `[cls(block depth−n) | … | cls(block depth−1) | avgpool?]`, each `D` wide:
///   `n·D (+D)` columns;
/// * BoC: the same blocks, each `C·D` wide and channel-major inside (`[c·D, (c+1)·D)` is
///   channel `c`), then the per-channel patch averages of the last block (`C·D`):
///   `n·C·D (+C·D)` columns.
///
/// L2 normalisation (kNN features) divides the whole row by its norm; it does not move
/// columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureLayout {
    pub n_last_blocks: usize,
    pub avgpool: bool,
    pub bag_of_channels: bool,
    /// Whether every row was divided by its L2 norm.
    pub l2_normalized: bool,
    /// `D`, the backbone width.
    pub embed_dim: usize,
    /// Channels of the input images (`C`).
    pub channels: usize,
    /// Blocks of the backbone.
    pub depth: usize,
    /// Total columns.
    pub dim: usize,
    /// Every run of columns, in column order.
    pub segments: Vec<Segment>,
}

impl FeatureLayout {
    /// The layout for a backbone of `depth` blocks and width `embed_dim` on `channels`-channel
    /// images. `channel_names`, when given, must have one name per channel.
    ///
    /// # Errors
    /// `n_last_blocks` outside `1..=depth`, a zero width or channel count, a wrong number of
    /// channel names.
    pub fn new(
        n_last_blocks: usize,
        avgpool: bool,
        bag_of_channels: bool,
        embed_dim: usize,
        channels: usize,
        depth: usize,
        channel_names: Option<&[String]>,
    ) -> Result<Self> {
        if n_last_blocks == 0 || n_last_blocks > depth {
            return Err(EvalError::InvalidConfig {
                what: "n_last_blocks",
                reason: format!("{n_last_blocks} is not in 1..={depth} (the backbone's depth)"),
            });
        }
        if embed_dim == 0 || channels == 0 {
            return Err(EvalError::Empty { what: "feature layout (zero width or channels)" });
        }
        if let Some(names) = channel_names
            && names.len() != channels
        {
            return Err(EvalError::Mismatch {
                what: "channel names (one per channel)",
                expected: channels,
                actual: names.len(),
            });
        }
        let per_block_channels: Vec<Option<usize>> =
            if bag_of_channels { (0..channels).map(Some).collect() } else { vec![None] };
        let mut segments = Vec::new();
        let mut start = 0;
        let mut push = |kind, block, channel: Option<usize>| {
            let channel_name = channel.and_then(|c| channel_names.map(|n| n[c].clone()));
            segments.push(Segment { kind, block, channel, channel_name, start, end: start + embed_dim });
            start += embed_dim;
        };
        for block in depth - n_last_blocks..depth {
            for &c in &per_block_channels {
                push(SegmentKind::Cls, block, c);
            }
        }
        if avgpool {
            for &c in &per_block_channels {
                push(SegmentKind::Avgpool, depth - 1, c);
            }
        }
        Ok(Self {
            n_last_blocks,
            avgpool,
            bag_of_channels,
            l2_normalized: false,
            embed_dim,
            channels,
            depth,
            dim: start,
            segments,
        })
    }

    /// The columns of `kind` for `block` (absolute index) and `channel` (`None` without BoC).
    pub fn segment(&self, kind: SegmentKind, block: usize, channel: Option<usize>) -> Option<Range<usize>> {
        self.segments.iter().find(|s| s.kind == kind && s.block == block && s.channel == channel).map(Segment::columns)
    }

    /// The columns of the last block's CLS (all channels) and, with avgpool, the patch
    /// averages: the features of the leave-one-out protocol (spec §6.4), in column order.
    pub fn last_block_columns(&self) -> Vec<Range<usize>> {
        let last = self.depth.saturating_sub(1);
        merge(self.segments.iter().filter(|s| s.block == last).map(Segment::columns))
    }

    /// Checks that the segments tile `0..dim` in order, each `embed_dim` wide (for layouts
    /// read from files).
    ///
    /// # Errors
    /// [`EvalError::InvalidConfig`] naming the first inconsistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(EvalError::InvalidConfig { what: "feature layout", reason });
        let mut at = 0;
        for (i, s) in self.segments.iter().enumerate() {
            if s.start != at || s.end != s.start + self.embed_dim {
                return bad(format!(
                    "segment {i} covers {}..{}, expected {at}..{}",
                    s.start,
                    s.end,
                    at + self.embed_dim
                ));
            }
            at = s.end;
        }
        if at != self.dim || self.dim == 0 {
            return bad(format!("segments cover {at} columns, dim is {}", self.dim));
        }
        Ok(())
    }
}

/// Adjacent ranges merged.
fn merge(ranges: impl Iterator<Item = Range<usize>>) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_spec_table() {
        // ViT-L, D 1024 (spec §4).
        let dim = |n, avg, boc, c| FeatureLayout::new(n, avg, boc, 1024, c, 24, None).unwrap().dim;
        assert_eq!(dim(4, true, true, 4), 20_480);
        assert_eq!([dim(1, true, true, 3), dim(1, true, true, 4), dim(1, true, true, 5)], [6_144, 8_192, 10_240]);
        assert_eq!([dim(1, false, true, 3), dim(1, false, true, 4), dim(1, false, true, 5)], [3_072, 4_096, 5_120]);
        assert_eq!(dim(4, true, false, 4), 5_120);
    }

    #[test]
    fn segments_and_last_block() {
        let names: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let l = FeatureLayout::new(2, true, true, 3, 2, 4, Some(&names)).unwrap();
        l.validate().unwrap();
        assert_eq!(l.dim, 18);
        assert_eq!(l.segment(SegmentKind::Cls, 2, Some(1)), Some(3..6));
        assert_eq!(l.segment(SegmentKind::Cls, 3, Some(0)), Some(6..9));
        assert_eq!(l.segment(SegmentKind::Avgpool, 3, Some(1)), Some(15..18));
        assert_eq!(l.segments[1].channel_name.as_deref(), Some("b"));
        assert_eq!(l.last_block_columns(), vec![6..18]);
        assert!(FeatureLayout::new(5, false, false, 3, 1, 4, None).is_err());
        assert!(FeatureLayout::new(1, false, true, 3, 2, 4, Some(&names[..1])).is_err());
    }
}
