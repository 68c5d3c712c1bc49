//! PNG and JPEG via the `image` crate: 8/16-bit grey, grey + alpha, RGB, RGBA.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::convert::{deinterleave, to_f32_vec};
use crate::{DataError, FileFormat, MultiChannelImage, ReadOptions, SampleType};

/// Decodes a PNG or JPEG; every colour component becomes a channel (RGBA → 4 channels, in
/// R, G, B, A order). Palette PNGs are expanded to RGB(A) by the decoder, and a `tRNS` chunk adds
/// an alpha channel.
pub(crate) fn read_raster(
    bytes: &[u8],
    path: &Path,
    format: FileFormat,
    opts: &ReadOptions,
) -> Result<MultiChannelImage, DataError> {
    opts.check_single_plane(path)?;
    let image_format = match format {
        FileFormat::Png => image::ImageFormat::Png,
        FileFormat::Jpeg => image::ImageFormat::Jpeg,
        other => {
            return Err(DataError::unsupported(path, "raster format", "PNG or JPEG", other.name()));
        }
    };
    let err = |e: image::ImageError| DataError::decode(path, format, e);
    if format == FileFormat::Jpeg && !jpeg_is_complete(bytes) {
        // zune-jpeg fills in missing data silently; a truncated file is corrupt data for us.
        return Err(DataError::decode(path, format, "truncated JPEG: no end-of-image marker after the last scan"));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    // Our own guard below replaces the crate's allocation limit.
    reader.no_limits();
    let decoder = reader.into_decoder().map_err(err)?;
    let (w, h) = decoder.dimensions();
    let samples = usize::from(decoder.color_type().channel_count());
    if w == 0 || h == 0 {
        return Err(DataError::Empty { path: path.to_path_buf(), found: format!("{w} × {h} pixels") });
    }
    opts.check_max_values(path, u64::from(w) * u64::from(h) * samples as u64)?;
    let image = DynamicImage::from_decoder(decoder).map_err(err)?;
    let (values, samples, sample_type) = match image {
        DynamicImage::ImageLuma8(b) => (to_f32_vec(b.as_raw()), 1, SampleType::U8),
        DynamicImage::ImageLumaA8(b) => (to_f32_vec(b.as_raw()), 2, SampleType::U8),
        DynamicImage::ImageRgb8(b) => (to_f32_vec(b.as_raw()), 3, SampleType::U8),
        DynamicImage::ImageRgba8(b) => (to_f32_vec(b.as_raw()), 4, SampleType::U8),
        DynamicImage::ImageLuma16(b) => (to_f32_vec(b.as_raw()), 1, SampleType::U16),
        DynamicImage::ImageLumaA16(b) => (to_f32_vec(b.as_raw()), 2, SampleType::U16),
        DynamicImage::ImageRgb16(b) => (to_f32_vec(b.as_raw()), 3, SampleType::U16),
        DynamicImage::ImageRgba16(b) => (to_f32_vec(b.as_raw()), 4, SampleType::U16),
        DynamicImage::ImageRgb32F(b) => (b.into_raw(), 3, SampleType::F32),
        DynamicImage::ImageRgba32F(b) => (b.into_raw(), 4, SampleType::F32),
        other => {
            return Err(DataError::unsupported(
                path,
                "colour type",
                "grey, grey + alpha, RGB or RGBA",
                format!("{:?}", other.color()),
            ));
        }
    };
    let data = deinterleave(&values, samples);
    MultiChannelImage::from_parts(path, data, [samples, h as usize, w as usize], sample_type)
}

/// Whether an end-of-image marker (FF D9) follows the last start-of-scan marker (FF DA). Inside
/// entropy-coded data every FF byte is stuffed (FF 00), so both markers are unambiguous; an EXIF
/// thumbnail's markers come before the main image's last scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_completeness() {
        assert!(jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0x00, 0xFF, 0xD9]));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0x00]));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xD9, 0xFF, 0xDA, 1]));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8]));
    }
}
