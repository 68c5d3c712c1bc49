//! The typed multi-channel image every reader returns.

use std::path::Path;

use crate::{DataError, SampleType};

/// A (C, H, W) image: `channels` planes of `height` × `width` values, row-major, channel-major.
///
/// `data[c * height * width + y * width + x]` is the raw value of channel `c` at row `y`, column
/// `x`, converted to `f32` but not rescaled (a `U16` pixel of 4095 is `4095.0`).
/// [`sample_type`](Self::sample_type) says what the file stored; see
/// [`SampleType::is_exact_in_f32`] for the types that lose precision.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiChannelImage {
    /// `channels * height * width` values, (C, H, W) row-major.
    pub data: Vec<f32>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// One entry per channel: the name from OME-XML, from the caller, or `None`.
    pub channel_names: Vec<Option<String>>,
    pub sample_type: SampleType,
}

impl MultiChannelImage {
    /// Checks that `data.len() == channels * height * width` and that no dimension is zero.
    /// Channel names start as `None`.
    pub fn new(
        data: Vec<f32>,
        channels: usize,
        height: usize,
        width: usize,
        sample_type: SampleType,
    ) -> Result<Self, DataError> {
        Self::from_parts(Path::new(""), data, [channels, height, width], sample_type)
    }

    pub(crate) fn from_parts(
        path: &Path,
        data: Vec<f32>,
        [channels, height, width]: [usize; 3],
        sample_type: SampleType,
    ) -> Result<Self, DataError> {
        if channels == 0 || height == 0 || width == 0 {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
                found: format!("(C, H, W) = ({channels}, {height}, {width})"),
            });
        }
        let expected = channels.checked_mul(height).and_then(|v| v.checked_mul(width));
        if expected != Some(data.len()) {
            return Err(DataError::shape(
                path,
                "data length",
                format!("{channels} × {height} × {width} values"),
                format!("{} values", data.len()),
            ));
        }
        Ok(Self { data, channels, height, width, channel_names: vec![None; channels], sample_type })
    }

    /// `(channels, height, width)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Number of values in one channel (`height * width`).
    pub fn plane_len(&self) -> usize {
        self.height * self.width
    }

    /// The `height * width` values of channel `c`, or `None` if `c >= channels`.
    pub fn channel(&self, c: usize) -> Option<&[f32]> {
        let n = self.plane_len();
        self.data.get(c.checked_mul(n)?..(c + 1).checked_mul(n)?)
    }

    /// Iterates over the channels' planes.
    pub fn channel_planes(&self) -> impl ExactSizeIterator<Item = &[f32]> {
        self.data.chunks_exact(self.plane_len().max(1))
    }

    /// Replaces the channel names; `names.len()` must equal `channels`.
    pub fn with_channel_names<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, DataError> {
        let names: Vec<Option<String>> = names.into_iter().map(|s| Some(s.into())).collect();
        if names.len() != self.channels {
            return Err(DataError::InvalidArgument {
                path: Default::default(),
                what: "channel names",
                expected: format!("{} names", self.channels),
                found: format!("{} names", names.len()),
            });
        }
        self.channel_names = names;
        Ok(self)
    }

    /// A new image with the channels `indices` (in that order; repeats allowed).
    pub fn select_channels(&self, indices: &[usize]) -> Result<Self, DataError> {
        let mut data = Vec::with_capacity(indices.len() * self.plane_len());
        let mut names = Vec::with_capacity(indices.len());
        for &c in indices {
            let plane = self.channel(c).ok_or(DataError::OutOfRange {
                path: Default::default(),
                what: "channel",
                index: c,
                size: self.channels,
            })?;
            data.extend_from_slice(plane);
            names.push(self.channel_names.get(c).cloned().flatten());
        }
        let mut out = Self::new(data, indices.len(), self.height, self.width, self.sample_type)?;
        out.channel_names = names;
        Ok(out)
    }

    /// A `(C, H, W)` f32 tensor with a copy of the data.
    pub fn to_tensor(&self, device: &candle_core::Device) -> candle_core::Result<candle_core::Tensor> {
        candle_core::Tensor::from_slice(&self.data, self.shape(), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> MultiChannelImage {
        MultiChannelImage::new((0..12).map(|v| v as f32).collect(), 3, 2, 2, SampleType::U8).unwrap()
    }

    #[test]
    fn new_checks_shape() {
        assert!(matches!(
            MultiChannelImage::new(vec![0.0; 5], 1, 2, 3, SampleType::U8),
            Err(DataError::ShapeMismatch { .. })
        ));
        assert!(matches!(MultiChannelImage::new(vec![], 0, 2, 3, SampleType::U8), Err(DataError::Empty { .. })));
        assert!(matches!(
            MultiChannelImage::new(vec![], usize::MAX, 2, 3, SampleType::U8),
            Err(DataError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn channels_select_names_tensor() {
        let im = img().with_channel_names(["a", "b", "c"]).unwrap();
        assert_eq!(im.channel(1).unwrap(), &[4.0, 5.0, 6.0, 7.0]);
        assert!(im.channel(3).is_none());
        assert_eq!(im.channel_planes().len(), 3);
        let sel = im.select_channels(&[2, 0]).unwrap();
        assert_eq!(sel.shape(), (2, 2, 2));
        assert_eq!(sel.data[..4], [8.0, 9.0, 10.0, 11.0]);
        assert_eq!(sel.channel_names, vec![Some("c".into()), Some("a".into())]);
        assert!(im.select_channels(&[3]).is_err());
        assert!(img().with_channel_names(["a"]).is_err());
        let t = im.to_tensor(&candle_core::Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[3, 2, 2]);
        assert_eq!(t.flatten_all().unwrap().to_vec1::<f32>().unwrap(), im.data);
    }
}
