//! Channel layouts of the Cell-DINO data sets that the file itself does not describe.

use std::path::Path;

use crate::{DataError, MultiChannelImage, ReadOptions, read_image};

/// Channel order of HPA RGBA PNGs (HPA field-of-view and single-cell images): 0 microtubules,
/// 1 protein (the antibody stain), 2 nucleus, 3 endoplasmic reticulum.
pub const HPA_CHANNEL_NAMES: [&str; 4] = ["microtubules", "protein", "nucleus", "endoplasmic reticulum"];

/// How a single 2-D image holds several channels side by side along its width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelTiling {
    /// Square H × H channels: C = W / H (CHAMMI PNGs, upstream `XChannelsDecoder`).
    Square,
    /// This many channels of width W / n each (CHAMMI WTC TIFFs, upstream
    /// `XChannelsTIFFDecoder(num_channels = n)`).
    Count(usize),
}

/// Splits a one-channel image whose width holds the channels side by side: channel k is
/// columns `[k·w, (k+1)·w)` with `w` the channel width. Fails unless the image has exactly one
/// channel and the width divides evenly.
pub fn untile_width(image: &MultiChannelImage, tiling: ChannelTiling) -> Result<MultiChannelImage, DataError> {
    untile(image, tiling, Path::new(""))
}

fn untile(image: &MultiChannelImage, tiling: ChannelTiling, path: &Path) -> Result<MultiChannelImage, DataError> {
    if image.channels != 1 {
        return Err(DataError::shape(
            path,
            "channel tiling",
            "a single-channel image",
            format!("{} channels", image.channels),
        ));
    }
    let (h, w) = (image.height, image.width);
    let (channels, tile_w) = match tiling {
        ChannelTiling::Square if w.is_multiple_of(h) => (w / h, h),
        ChannelTiling::Count(n) if n > 0 && w.is_multiple_of(n) => (n, w / n),
        _ => {
            return Err(DataError::shape(
                path,
                "channel tiling",
                match tiling {
                    ChannelTiling::Square => {
                        format!("a width that is a multiple of the height {h}")
                    }
                    ChannelTiling::Count(n) => {
                        format!("a width that is a multiple of {n} channels")
                    }
                },
                format!("{h} × {w} pixels"),
            ));
        }
    };
    let mut data = Vec::with_capacity(image.data.len());
    for k in 0..channels {
        for row in image.data.chunks_exact(w) {
            data.extend_from_slice(&row[k * tile_w..(k + 1) * tile_w]);
        }
    }
    MultiChannelImage::from_parts(path, data, [channels, h, tile_w], image.sample_type)
}

/// Reads a CHAMMI-style image: a one-channel file is split with [`untile_width`]; a file that
/// already has several channels (RGB/RGBA PNG) is returned as it is, as upstream does, provided
/// its channel count agrees with `ChannelTiling::Count`.
pub fn read_tiled_image(
    path: impl AsRef<Path>,
    tiling: ChannelTiling,
    opts: &ReadOptions,
) -> Result<MultiChannelImage, DataError> {
    let path = path.as_ref();
    let image = read_image(path, opts)?;
    match tiling {
        _ if image.channels == 1 => untile(&image, tiling, path),
        ChannelTiling::Count(n) if n != image.channels => Err(DataError::shape(
            path,
            "channel tiling",
            format!("a single-channel image or {n} channels"),
            format!("{} channels", image.channels),
        )),
        _ => Ok(image),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleType;

    #[test]
    fn untile_square_and_count() {
        // 2 × 6: three 2 × 2 channels.
        let data: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let im = MultiChannelImage::new(data, 1, 2, 6, SampleType::U8).unwrap();
        let sq = untile_width(&im, ChannelTiling::Square).unwrap();
        assert_eq!(sq.shape(), (3, 2, 2));
        assert_eq!(sq.channel(1).unwrap(), &[2.0, 3.0, 8.0, 9.0]);
        let two = untile_width(&im, ChannelTiling::Count(2)).unwrap();
        assert_eq!(two.shape(), (2, 2, 3));
        assert_eq!(two.channel(1).unwrap(), &[3.0, 4.0, 5.0, 9.0, 10.0, 11.0]);
        assert!(untile_width(&im, ChannelTiling::Count(4)).is_err());
        assert!(untile_width(&im, ChannelTiling::Count(0)).is_err());
        let odd = MultiChannelImage::new(vec![0.0; 10], 1, 2, 5, SampleType::U8).unwrap();
        assert!(untile_width(&odd, ChannelTiling::Square).is_err());
        assert!(untile_width(&sq, ChannelTiling::Square).is_err());
    }
}
