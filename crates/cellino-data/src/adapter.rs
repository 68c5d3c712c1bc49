//! Fixed-width channel adapter: map any channel set onto the N channels a model expects.

use std::fmt;

use crate::channels::same_name;
use crate::{DataError, MultiChannelImage};

/// One input channel of the model: its name and the other names that may fill it, in priority
/// order (e.g. `nucleus` ← `DNA`, `DAPI`, `Hoechst`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSlot {
    pub name: String,
    pub aliases: Vec<String>,
}

impl ChannelSlot {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), aliases: Vec::new() }
    }

    pub fn with_aliases<S: Into<String>>(mut self, aliases: impl IntoIterator<Item = S>) -> Self {
        self.aliases = aliases.into_iter().map(Into::into).collect();
        self
    }

    fn candidates(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// How slots that no source channel matches are filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fill {
    /// With a plane of zeros.
    #[default]
    Zeros,
    /// With a copy of a source channel: first the channels no slot took, then the others,
    /// cyclically, in source order.
    Repeat,
}

/// Where one output channel came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotSource {
    /// Source channel `source`, whose name matched `name` (the slot name or one of its aliases).
    ByName { source: usize, name: String },
    /// Unnamed source channel `source`, taken in order.
    ByPosition { source: usize },
    /// A copy of source channel `source` ([`Fill::Repeat`]).
    Repeated { source: usize },
    /// Zeros ([`Fill::Zeros`]).
    Zeros,
}

impl SlotSource {
    /// The source channel copied into the slot, if any.
    pub fn source(&self) -> Option<usize> {
        match *self {
            Self::ByName { source, .. } | Self::ByPosition { source } | Self::Repeated { source } => Some(source),
            Self::Zeros => None,
        }
    }
}

/// What [`ChannelAdapter`] did: one entry per output slot, and the source channels it dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterReport {
    /// `(slot name, where it came from)`, in output order.
    pub slots: Vec<(String, SlotSource)>,
    /// Source channels that no slot uses.
    pub dropped: Vec<usize>,
}

impl AdapterReport {
    /// Whether every slot got a distinct source channel and none was dropped.
    pub fn is_exact(&self) -> bool {
        self.dropped.is_empty()
            && self.slots.iter().all(|(_, s)| matches!(s, SlotSource::ByName { .. } | SlotSource::ByPosition { .. }))
    }
}

impl fmt::Display for AdapterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, (slot, src)) in self.slots.iter().enumerate() {
            if k > 0 {
                f.write_str("; ")?;
            }
            match src {
                SlotSource::ByName { source, name } => write!(f, "{slot} <- #{source} ({name})")?,
                SlotSource::ByPosition { source } => write!(f, "{slot} <- #{source} (by position)")?,
                SlotSource::Repeated { source } => write!(f, "{slot} <- #{source} (repeated)")?,
                SlotSource::Zeros => write!(f, "{slot} <- zeros")?,
            }
        }
        if !self.dropped.is_empty() {
            write!(f, "; dropped {:?}", self.dropped)?;
        }
        Ok(())
    }
}

/// Maps an image with any channels onto the fixed channel list of a model.
///
/// For every slot in order, the first unused source channel whose name matches the slot name,
/// else its first matching alias, is taken. Unnamed source channels then fill the remaining slots
/// in order. Slots still empty get [`Fill`]. Output channels carry the slot names.
///
/// ```
/// use cellino_data::{ChannelAdapter, Fill, MultiChannelImage, SampleType, SlotSource};
/// // A 3-channel image for a 4-channel HPA model (microtubules, protein, nucleus, ER).
/// let im = MultiChannelImage::new(vec![1.0, 2.0, 3.0], 3, 1, 1, SampleType::U8)?
///     .with_channel_names(["DAPI", "antibody", "tubulin"])?;
/// let adapter = ChannelAdapter::hpa().with_fill(Fill::Zeros);
/// let (out, report) = adapter.adapt(&im)?;
/// assert_eq!(out.data, vec![3.0, 2.0, 1.0, 0.0]);
/// assert_eq!(report.slots[3].1, SlotSource::Zeros);
/// println!("{report}"); // microtubules <- #2 (tubulin); protein <- #1 (antibody); ...
/// # Ok::<(), cellino_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelAdapter {
    pub slots: Vec<ChannelSlot>,
    pub fill: Fill,
}

impl ChannelAdapter {
    /// Slots with the given names and no aliases, filled with zeros.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self { slots: names.into_iter().map(ChannelSlot::new).collect(), fill: Fill::Zeros }
    }

    pub fn from_slots(slots: Vec<ChannelSlot>) -> Self {
        Self { slots, fill: Fill::Zeros }
    }

    pub fn with_fill(mut self, fill: Fill) -> Self {
        self.fill = fill;
        self
    }

    /// The 4 channels of the Cell-DINO HPA models in their order (microtubules, protein, nucleus,
    /// endoplasmic reticulum, as [`HPA_CHANNEL_NAMES`](crate::HPA_CHANNEL_NAMES)), with common
    /// aliases.
    pub fn hpa() -> Self {
        Self::from_slots(vec![
            ChannelSlot::new("microtubules").with_aliases(["tubulin", "microtubule", "red"]),
            ChannelSlot::new("protein").with_aliases(["antibody", "green", "target", "protein of interest"]),
            ChannelSlot::new("nucleus").with_aliases(["dna", "dapi", "hoechst", "nuclei", "blue"]),
            ChannelSlot::new("endoplasmic reticulum").with_aliases(["er", "calreticulin", "concanavalin", "yellow"]),
        ])
    }

    /// Number of output channels.
    pub fn width(&self) -> usize {
        self.slots.len()
    }

    /// What [`adapt`](Self::adapt) does to an image whose channels have these names.
    pub fn plan(&self, names: &[Option<String>]) -> AdapterReport {
        let mut used = vec![false; names.len()];
        let mut slots: Vec<Option<SlotSource>> = vec![None; self.slots.len()];
        for (slot, out) in self.slots.iter().zip(slots.iter_mut()) {
            'cand: for cand in slot.candidates() {
                for (c, name) in names.iter().enumerate() {
                    if !used[c] && name.as_deref().is_some_and(|n| same_name(n, cand)) {
                        used[c] = true;
                        *out = Some(SlotSource::ByName { source: c, name: name.clone().unwrap_or_default() });
                        break 'cand;
                    }
                }
            }
        }
        let mut unnamed = (0..names.len()).filter(|&c| names[c].is_none());
        for out in slots.iter_mut().filter(|s| s.is_none()) {
            if let Some(c) = unnamed.next() {
                used[c] = true;
                *out = Some(SlotSource::ByPosition { source: c });
            }
        }
        let pool: Vec<usize> =
            (0..names.len()).filter(|&c| !used[c]).chain((0..names.len()).filter(|&c| used[c])).collect();
        let dropped: Vec<usize> = (0..names.len()).filter(|&c| !used[c]).collect();
        let mut repeat = pool.iter().copied().cycle();
        let slots = self
            .slots
            .iter()
            .zip(slots)
            .map(|(slot, src)| {
                let src = src.unwrap_or_else(|| match (self.fill, repeat.next()) {
                    (Fill::Repeat, Some(source)) => SlotSource::Repeated { source },
                    _ => SlotSource::Zeros,
                });
                (slot.name.clone(), src)
            })
            .collect::<Vec<_>>();
        let dropped = dropped.into_iter().filter(|c| !slots.iter().any(|(_, s)| s.source() == Some(*c))).collect();
        AdapterReport { slots, dropped }
    }

    /// The adapted image (one channel per slot, named after the slots) and what was done.
    pub fn adapt(&self, image: &MultiChannelImage) -> Result<(MultiChannelImage, AdapterReport), DataError> {
        if self.slots.is_empty() {
            return Err(DataError::invalid("channel adapter", "at least one slot", "none"));
        }
        let report = self.plan(&image.channel_names);
        let n = image.plane_len();
        let mut data = Vec::with_capacity(n * self.slots.len());
        for (_, src) in &report.slots {
            match src.source().and_then(|c| image.channel(c)) {
                Some(plane) => data.extend_from_slice(plane),
                None => data.resize(data.len() + n, 0.0),
            }
        }
        let mut out = MultiChannelImage::new(data, self.slots.len(), image.height, image.width, image.sample_type)?;
        out.channel_names = self.slots.iter().map(|s| Some(s.name.clone())).collect();
        Ok((out, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleType;

    fn image(names: &[Option<&str>]) -> MultiChannelImage {
        let c = names.len();
        let mut im = MultiChannelImage::new((0..c).map(|v| v as f32 + 1.0).collect(), c, 1, 1, SampleType::U8).unwrap();
        im.channel_names = names.iter().map(|n| n.map(str::to_owned)).collect();
        im
    }

    #[test]
    fn by_name_with_priority_and_drop() {
        // 5 channels onto the 4 HPA slots: ER matched by alias, "membrane" dropped.
        let im = image(&[Some("nucleus"), Some("membrane"), Some("protein"), Some("tubulin"), Some("ER")]);
        let (out, rep) = ChannelAdapter::hpa().adapt(&im).unwrap();
        assert_eq!(out.data, vec![4.0, 3.0, 1.0, 5.0]);
        assert_eq!(rep.dropped, vec![1]);
        assert!(!rep.is_exact());
        assert_eq!(rep.slots[0].1, SlotSource::ByName { source: 3, name: "tubulin".into() });
        assert_eq!(out.channel_names[3].as_deref(), Some("endoplasmic reticulum"));
        // The slot name wins over an alias that comes first in the image.
        let im = image(&[Some("dna"), Some("nucleus")]);
        let rep = ChannelAdapter::new(["nucleus"]).plan(&im.channel_names);
        assert_eq!(rep.slots[0].1, SlotSource::ByName { source: 1, name: "nucleus".into() });
        assert_eq!(rep.dropped, vec![0]);
    }

    #[test]
    fn unnamed_by_position_then_fill() {
        let im = image(&[None, None, None]);
        let (out, rep) = ChannelAdapter::hpa().with_fill(Fill::Repeat).adapt(&im).unwrap();
        assert_eq!(out.data, vec![1.0, 2.0, 3.0, 1.0]);
        assert_eq!(rep.slots[3].1, SlotSource::Repeated { source: 0 });
        let (out, _) = ChannelAdapter::hpa().adapt(&im).unwrap();
        assert_eq!(out.data, vec![1.0, 2.0, 3.0, 0.0]);
        // Repeat prefers channels no slot took.
        let im = image(&[Some("x"), Some("protein")]);
        let (out, rep) = ChannelAdapter::new(["protein", "a", "b"]).with_fill(Fill::Repeat).adapt(&im).unwrap();
        assert_eq!(out.data, vec![2.0, 1.0, 2.0]);
        assert!(rep.dropped.is_empty());
        assert!(rep.to_string().contains("a <- #0 (repeated)"));
        // Exact mapping.
        let im = image(&[Some("microtubules"), Some("protein"), Some("nucleus"), Some("endoplasmic reticulum")]);
        assert!(ChannelAdapter::hpa().plan(&im.channel_names).is_exact());
        assert!(ChannelAdapter::new(Vec::<String>::new()).adapt(&im).is_err());
    }
}
