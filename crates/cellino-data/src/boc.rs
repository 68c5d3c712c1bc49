//! Bag of Channels: every channel of every image is its own single-channel sample.

use std::path::PathBuf;

use crate::{ChannelId, DataError, Sample, SampleSource};

/// Every (image, channel) pair of `inner` as a single-channel sample: N images with C channels
/// give N·C samples, image-major (sample `k` of an all-C dataset is image `k / C`, channel
/// `k % C`). The channel is the typed field [`Sample::channel`]; the label is the image's.
///
/// This is what the Channel-Adaptive DINO paper describes. (Upstream's released
/// `wildcard=SEPARATE_CHANNELS` code instead feeds only the protein channel, N samples per epoch;
/// that is deliberately not reproduced.) Images may have different channel counts (e.g. joint
/// CHAMMI 3/4/5 channels); the counts must be known up front, from the source or given.
///
/// ```
/// use cellino_data::{BagOfChannels, SampleSource};
/// # use cellino_data::{Dataset, Record, ImageSource, Target};
/// # let ds = Dataset::from_records("x", vec![Record { source: ImageSource::File("a.png".into()),
/// #     target: Target::None, metadata: vec![], line: 0 }; 5]);
/// let boc = BagOfChannels::with_channel_count(ds, 4)?;
/// assert_eq!(boc.len(), 20);
/// assert_eq!(boc.locate(6), Some((1, 2)));
/// # Ok::<(), cellino_data::DataError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BagOfChannels<S> {
    inner: S,
    /// `offsets[i]` = first sample of image `i`; `offsets[n]` = total.
    offsets: Vec<usize>,
    counts: Vec<usize>,
}

impl<S: SampleSource> BagOfChannels<S> {
    /// Uses the channel counts the source knows ([`SampleSource::channel_count`]); an error if it
    /// does not know them for every image (then use [`with_channel_count`](Self::with_channel_count)
    /// or [`with_channel_counts`](Self::with_channel_counts)).
    pub fn new(inner: S) -> Result<Self, DataError> {
        let counts = (0..inner.len())
            .map(|i| {
                inner.channel_count(i).ok_or_else(|| {
                    DataError::invalid(
                        "bag of channels",
                        "a source whose channel counts are known (dataset channels or names, a channel selection \
                         or adapter), or an explicit count",
                        format!("unknown channel count for sample {i}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::with_channel_counts(inner, counts)
    }

    /// Every image has `channels` channels (checked at load).
    pub fn with_channel_count(inner: S, channels: usize) -> Result<Self, DataError> {
        let n = inner.len();
        Self::with_channel_counts(inner, vec![channels; n])
    }

    /// Image `i` has `counts[i]` channels (checked at load).
    pub fn with_channel_counts(inner: S, counts: Vec<usize>) -> Result<Self, DataError> {
        if counts.len() != inner.len() {
            return Err(DataError::invalid(
                "bag of channels",
                format!("{} channel counts (one per image)", inner.len()),
                format!("{} counts", counts.len()),
            ));
        }
        if let Some(i) = counts.iter().position(|&c| c == 0) {
            return Err(DataError::invalid(
                "bag of channels",
                "at least one channel per image",
                format!("0 for image {i}"),
            ));
        }
        let mut offsets = Vec::with_capacity(counts.len() + 1);
        let mut total = 0usize;
        offsets.push(0);
        for &c in &counts {
            total = total
                .checked_add(c)
                .ok_or_else(|| DataError::invalid("bag of channels", "a sample count that fits usize", "overflow"))?;
            offsets.push(total);
        }
        Ok(Self { inner, offsets, counts })
    }

    /// `(image, channel)` of sample `index`, or `None` past the end.
    pub fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len() {
            return None;
        }
        let image = self.offsets.partition_point(|&o| o <= index) - 1;
        Some((image, index - self.offsets[image]))
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: SampleSource> SampleSource for BagOfChannels<S> {
    fn len(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    fn load(&self, index: usize) -> Result<Sample, DataError> {
        let Some((image_index, channel)) = self.locate(index) else {
            return Err(DataError::OutOfRange { path: PathBuf::new(), what: "sample", index, size: self.len() });
        };
        // Errors name this sample (index and channel) and keep the image's origin.
        let sample = self.inner.load(image_index).map_err(|e| {
            let source = match e {
                DataError::Sample { source, .. } => source,
                e => Box::new(e),
            };
            DataError::Sample { index, origin: self.origin(index), source }
        })?;
        let expected = self.counts[image_index];
        if sample.image.channels != expected {
            return Err(DataError::Sample {
                index,
                origin: format!("bag of channels, image {image_index}: {}", self.inner.origin(image_index)),
                source: Box::new(DataError::shape(
                    std::path::Path::new(""),
                    "channel count (bag of channels)",
                    format!("{expected} channels"),
                    format!("{} channels", sample.image.channels),
                )),
            });
        }
        let image = sample.image.select_channels(&[channel])?;
        let name = image.channel_names[0].clone();
        Ok(Sample {
            image,
            target: sample.target,
            index,
            image_index,
            channel: Some(ChannelId { index: channel, name }),
        })
    }

    fn channel_count(&self, _index: usize) -> Option<usize> {
        Some(1)
    }

    fn origin(&self, index: usize) -> String {
        match self.locate(index) {
            Some((image, channel)) => format!("channel {channel} of {}", self.inner.origin(image)),
            None => format!("sample {index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MultiChannelImage, SampleType, Target};

    /// Image `i` has `counts[i]` channels whose values are `100·i + c`.
    struct Synthetic {
        counts: Vec<usize>,
    }

    impl SampleSource for Synthetic {
        fn len(&self) -> usize {
            self.counts.len()
        }
        fn load(&self, index: usize) -> Result<Sample, DataError> {
            let c = if index == 3 { 2 } else { self.counts[index] }; // image 3 lies about its count
            let data = (0..c).map(|k| (100 * index + k) as f32).collect();
            let image = MultiChannelImage::new(data, c, 1, 1, SampleType::U8)?;
            Ok(Sample { image, target: Target::Class(index), index, image_index: index, channel: None })
        }
        fn channel_count(&self, index: usize) -> Option<usize> {
            self.counts.get(index).copied()
        }
    }

    #[test]
    fn every_image_channel_pair_once() {
        let boc = BagOfChannels::new(Synthetic { counts: vec![3, 4, 5] }).unwrap();
        assert_eq!(boc.len(), 12);
        let mut seen = Vec::new();
        for k in 0..boc.len() {
            let s = boc.load(k).unwrap();
            let ch = s.channel.clone().unwrap();
            assert_eq!(s.image.shape(), (1, 1, 1));
            assert_eq!(s.image.data[0], (100 * s.image_index + ch.index) as f32);
            assert_eq!(s.target, Target::Class(s.image_index));
            assert_eq!(s.index, k);
            seen.push((s.image_index, ch.index));
        }
        let expected: Vec<_> = [3, 4, 5].iter().enumerate().flat_map(|(i, &c)| (0..c).map(move |k| (i, k))).collect();
        assert_eq!(seen, expected);
        assert!(boc.load(12).is_err());
        assert_eq!(boc.locate(12), None);
    }

    #[test]
    fn wrong_counts_are_errors() {
        let boc = BagOfChannels::with_channel_count(Synthetic { counts: vec![4; 5] }, 4).unwrap();
        assert!(boc.load(3 * 4).is_err());
        assert!(BagOfChannels::with_channel_counts(Synthetic { counts: vec![4; 2] }, vec![4]).is_err());
        assert!(BagOfChannels::with_channel_count(Synthetic { counts: vec![4; 2] }, 0).is_err());
    }
}
