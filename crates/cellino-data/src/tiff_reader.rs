//! TIFF / BigTIFF / OME-TIFF / ImageJ reader on top of the `tiff` crate.
//!
//! Plain files: every full-resolution page is one or more channels (a page with S samples per
//! pixel gives S channels, interleaved or planar-separate), in page order. Reduced-resolution pages
//! (NewSubfileType bit 0, e.g. thumbnails) are skipped. Palette pages give their raw indices (the
//! colour map is ignored), as tifffile does. OME-TIFF and ImageJ hyperstacks: the pages
//! of the channels at the requested Z and T.

use std::io::Cursor;
use std::path::Path;

use tiff::TiffError;
use tiff::decoder::{Decoder, DecodingResult, DecodingSampleType, Limits};
use tiff::tags::Tag;

use crate::convert::{ToF32, deinterleave};
use crate::imagej::{self, ImageJStack};
use crate::ome::{self, OmePixels};
use crate::{DataError, FileFormat, MultiChannelImage, ReadOptions, SampleType};

type TiffDecoder<'a> = Decoder<Cursor<&'a [u8]>>;

/// What we need to know about a page before decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageInfo {
    width: u32,
    height: u32,
    samples: usize,
    sample_type: SampleType,
    planar_separate: bool,
}

impl PageInfo {
    fn values(&self) -> u64 {
        u64::from(self.width).saturating_mul(u64::from(self.height)).saturating_mul(self.samples as u64)
    }
}

pub(crate) fn read_tiff(bytes: &[u8], path: &Path, opts: &ReadOptions) -> Result<MultiChannelImage, DataError> {
    let (description, reduced, palette_ifds) = scan(bytes, path, opts)?;
    if palette_ifds.is_empty() {
        decode(bytes, description, &reduced, path, opts)
    } else {
        // The tiff crate refuses palette images; like tifffile we return the raw indices, so we
        // relabel those pages BlackIsZero in a copy of the file.
        let mut patched = bytes.to_vec();
        for ifd in palette_ifds {
            patch_photometric_to_black_is_zero(&mut patched, ifd).ok_or_else(|| {
                DataError::metadata(
                    path,
                    "TIFF",
                    "a readable PhotometricInterpretation entry",
                    format!("a malformed IFD at offset {ifd}"),
                )
            })?;
        }
        decode(&patched, description, &reduced, path, opts)
    }
}

fn open<'a>(bytes: &'a [u8], path: &Path, opts: &ReadOptions) -> Result<TiffDecoder<'a>, DataError> {
    Decoder::new(Cursor::new(bytes))
        .map(|d| d.with_limits(limits(opts)))
        .map_err(|e| DataError::decode(path, FileFormat::Tiff, e))
}

/// Walks the IFD chain once (the tiff crate rejects cycles): the first page's ImageDescription,
/// which pages are reduced-resolution copies, and the IFD offsets of palette pages.
#[allow(clippy::type_complexity)]
fn scan(bytes: &[u8], path: &Path, opts: &ReadOptions) -> Result<(Option<String>, Vec<bool>, Vec<u64>), DataError> {
    let err = |e: TiffError| DataError::decode(path, FileFormat::Tiff, e);
    let mut dec = open(bytes, path, opts)?;
    let description = dec.get_tag_ascii_string(Tag::ImageDescription).ok();
    let mut reduced = Vec::new();
    let mut palette = Vec::new();
    loop {
        reduced.push(is_reduced(&mut dec, path)?);
        let photometric = dec.find_tag_unsigned::<u16>(Tag::PhotometricInterpretation).map_err(err)?;
        if photometric == Some(3)
            && let Some(ptr) = dec.ifd_pointer()
        {
            palette.push(ptr.0);
        }
        if !dec.more_images() {
            break;
        }
        // Each page holds at least one value: this bounds the walk.
        opts.check_max_values(path, reduced.len() as u64 + 1)?;
        dec.next_image().map_err(err)?;
    }
    Ok((description, reduced, palette))
}

/// Sets the PhotometricInterpretation (tag 262) of the IFD at `ifd` to 1 (BlackIsZero).
fn patch_photometric_to_black_is_zero(bytes: &mut [u8], ifd: u64) -> Option<()> {
    let big_endian = bytes.starts_with(b"MM");
    let bigtiff = bytes.get(2..4)? == if big_endian { [0, 43] } else { [43, 0] };
    let u16_at = |b: &[u8], at: usize| -> Option<u16> {
        let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if big_endian { u16::from_be_bytes(v) } else { u16::from_le_bytes(v) })
    };
    let start = usize::try_from(ifd).ok()?;
    let (count, first, entry_len, value_at) = if bigtiff {
        let v: [u8; 8] = bytes.get(start..start + 8)?.try_into().ok()?;
        let n = if big_endian { u64::from_be_bytes(v) } else { u64::from_le_bytes(v) };
        (usize::try_from(n).ok()?, start + 8, 20, 12)
    } else {
        (usize::from(u16_at(bytes, start)?), start + 2, 12, 8)
    };
    for i in 0..count {
        let entry = first.checked_add(i.checked_mul(entry_len)?)?;
        // SHORT (type 3), count 1: the value sits in the first two bytes of the value field.
        if u16_at(bytes, entry)? == 262 && u16_at(bytes, entry + 2)? == 3 {
            let one = if big_endian { [0, 1] } else { [1, 0] };
            bytes.get_mut(entry + value_at..entry + value_at + 2)?.copy_from_slice(&one);
            return Some(());
        }
    }
    None
}

fn decode(
    bytes: &[u8],
    description: Option<String>,
    reduced: &[bool],
    path: &Path,
    opts: &ReadOptions,
) -> Result<MultiChannelImage, DataError> {
    let err = |e: TiffError| DataError::decode(path, FileFormat::Tiff, e);
    let mut dec = open(bytes, path, opts)?;
    let description = description.filter(|_| !opts.ignore_metadata);
    let (selected, names) = select_pages(description.as_deref(), &mut dec, reduced, path, opts)?;

    // Check every selected page against the first before decoding anything.
    let first = page_info(&mut dec, selected[0], path)?;
    let mut total: u64 = 0;
    let mut infos = Vec::with_capacity(selected.len());
    for &i in &selected {
        let info = page_info(&mut dec, i, path)?;
        if (info.width, info.height) != (first.width, first.height) {
            return Err(DataError::shape(
                path,
                format!("TIFF page {i} vs page {}", selected[0]),
                format!("{} × {} pixels", first.width, first.height),
                format!("{} × {} pixels", info.width, info.height),
            ));
        }
        if info.sample_type != first.sample_type {
            return Err(DataError::SampleTypeMismatch {
                path: path.to_path_buf(),
                what: format!("TIFF page {i} vs page {}", selected[0]),
                expected: first.sample_type,
                found: info.sample_type,
            });
        }
        total = total.saturating_add(info.values());
        infos.push((i, info));
    }
    if first.width == 0 || first.height == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            found: format!("{} × {} pixels", first.width, first.height),
        });
    }
    opts.check_max_values(path, total)?;

    let mut data = Vec::with_capacity(total.min(crate::DEFAULT_MAX_VALUES) as usize);
    let mut channels = 0;
    for (i, info) in infos {
        dec.seek_to_image(i).map_err(err)?;
        let mut buffer = DecodingResult::U8(Vec::new());
        dec.read_image_to_buffer(&mut buffer).map_err(err)?;
        let expected = info.values() as usize;
        let decoded = decoded_len(&buffer);
        if decoded < expected {
            return Err(DataError::shape(
                path,
                format!("decoded TIFF page {i}"),
                format!("{expected} values"),
                format!("{decoded} values"),
            ));
        }
        if info.samples > 1 && !info.planar_separate {
            let mut values = Vec::with_capacity(expected);
            append_f32(&buffer, expected, &mut values);
            data.extend(deinterleave(&values, info.samples));
        } else {
            // Converted straight into the image: no intermediate f32 copy of the page.
            append_f32(&buffer, expected, &mut data);
        }
        channels += info.samples;
    }
    let (h, w) = (first.height as usize, first.width as usize);
    let mut image = MultiChannelImage::from_parts(path, data, [channels, h, w], first.sample_type)?;
    if let Some(names) = names.filter(|n| n.len() == channels) {
        image.channel_names = names;
    }
    Ok(image)
}

/// IFD indices in channel order, and channel names where the metadata has them.
#[allow(clippy::type_complexity)]
fn select_pages(
    description: Option<&str>,
    dec: &mut TiffDecoder<'_>,
    reduced: &[bool],
    path: &Path,
    opts: &ReadOptions,
) -> Result<(Vec<usize>, Option<Vec<Option<String>>>), DataError> {
    if let Some(xml) = description.filter(|d| ome::is_ome(d)) {
        let ome = OmePixels::parse(xml, path)?;
        let first = page_info(dec, 0, path)?;
        if (ome.size_x, ome.size_y) != (first.width as usize, first.height as usize) {
            return Err(DataError::metadata(
                path,
                "OME-XML",
                format!("SizeX × SizeY = {} × {} (the first page)", first.width, first.height),
                format!("{} × {}", ome.size_x, ome.size_y),
            ));
        }
        // Each channel plane is a page: a SizeC beyond the file is refused before anything is
        // allocated per channel (a forged SizeC="100000000000000" asked for 800 TB).
        let samples = first.samples.max(1);
        if ome.size_c > reduced.len().saturating_mul(samples) {
            return Err(DataError::metadata(
                path,
                "OME-XML",
                format!("SizeC ≤ {} pages × {samples} samples per page", reduced.len()),
                format!("SizeC {}", ome.size_c),
            ));
        }
        let (ifds, names) = ome.select(opts.z, opts.t, first.samples, path)?;
        if let Some(&bad) = ifds.iter().find(|&&i| i >= reduced.len()) {
            return Err(DataError::metadata(
                path,
                "OME-XML",
                format!("IFD indices < {} (pages in the file)", reduced.len()),
                format!("IFD {bad}"),
            ));
        }
        return Ok((ifds, Some(names)));
    }
    if let Some(text) = description.filter(|d| imagej::is_imagej(d)) {
        let stack = ImageJStack::parse(text, path)?;
        return Ok((stack.select(opts.z, opts.t, reduced.len(), path)?, None));
    }
    opts.check_single_plane(path)?;
    let full: Vec<usize> = (0..reduced.len()).filter(|&i| !reduced[i]).collect();
    Ok((if full.is_empty() { (0..reduced.len()).collect() } else { full }, None))
}

fn limits(opts: &ReadOptions) -> Limits {
    // One page can be as large as the whole budget, in the widest (8-byte) type.
    let bytes = usize::try_from(opts.max_values.saturating_mul(8)).unwrap_or(usize::MAX);
    let mut limits = Limits::default();
    limits.decoding_buffer_size = bytes.max(limits.decoding_buffer_size);
    limits.intermediate_buffer_size = bytes.max(limits.intermediate_buffer_size);
    limits.ifd_value_size = 64 << 20;
    limits
}

/// NewSubfileType bit 0 (or the old SubfileType 2): a reduced-resolution copy, e.g. a thumbnail.
fn is_reduced(dec: &mut TiffDecoder<'_>, path: &Path) -> Result<bool, DataError> {
    let err = |e: TiffError| DataError::decode(path, FileFormat::Tiff, e);
    let new_subfile = dec.find_tag_unsigned::<u32>(Tag::NewSubfileType).map_err(err)?;
    let old_subfile = dec.find_tag_unsigned::<u32>(Tag::SubfileType).map_err(err)?;
    Ok(new_subfile.is_some_and(|v| v & 1 != 0) || old_subfile == Some(2))
}

/// Header facts of page `index`, read without decoding pixels.
fn page_info(dec: &mut TiffDecoder<'_>, index: usize, path: &Path) -> Result<PageInfo, DataError> {
    let err = |e: TiffError| DataError::decode(path, FileFormat::Tiff, e);
    dec.seek_to_image(index).map_err(err)?;
    let (width, height) = dec.dimensions().map_err(err)?;
    let samples = dec.find_tag_unsigned::<u16>(Tag::SamplesPerPixel).map_err(err)?.unwrap_or(1);
    let planar = dec.find_tag_unsigned::<u16>(Tag::PlanarConfiguration).map_err(err)?.unwrap_or(1);
    let bits = dec.find_tag_unsigned_vec::<u16>(Tag::BitsPerSample).map_err(err)?.unwrap_or_else(|| vec![1]);
    let layout = dec.image_buffer_layout().map_err(err)?;
    let sample_type = match layout.sample_type {
        Some(DecodingSampleType::U8) => SampleType::U8,
        Some(DecodingSampleType::U16) => SampleType::U16,
        Some(DecodingSampleType::U32) => SampleType::U32,
        Some(DecodingSampleType::U64) => SampleType::U64,
        Some(DecodingSampleType::I8) => SampleType::I8,
        Some(DecodingSampleType::I16) => SampleType::I16,
        Some(DecodingSampleType::I32) => SampleType::I32,
        Some(DecodingSampleType::I64) => SampleType::I64,
        Some(DecodingSampleType::F16) => SampleType::F16,
        Some(DecodingSampleType::F32) => SampleType::F32,
        Some(DecodingSampleType::F64) => SampleType::F64,
        None => {
            return Err(DataError::unsupported(
                path,
                "TIFF sample format",
                "unsigned, signed or IEEE float samples",
                format!("{:?} with {bits:?} bits", layout.sample_format),
            ));
        }
    };
    // Packed sub-byte or odd depths (1, 4, 12, 24 bits) would come back bit-packed.
    if bits.iter().any(|&b| u32::from(b) != sample_type.bits()) {
        return Err(DataError::unsupported(
            path,
            "TIFF bit depth",
            "8, 16, 32 or 64 bits per sample",
            format!("{bits:?} bits per sample"),
        ));
    }
    Ok(PageInfo { width, height, samples: usize::from(samples.max(1)), sample_type, planar_separate: planar == 2 })
}

fn decoded_len(buffer: &DecodingResult) -> usize {
    match buffer {
        DecodingResult::U8(v) => v.len(),
        DecodingResult::U16(v) => v.len(),
        DecodingResult::U32(v) => v.len(),
        DecodingResult::U64(v) => v.len(),
        DecodingResult::I8(v) => v.len(),
        DecodingResult::I16(v) => v.len(),
        DecodingResult::I32(v) => v.len(),
        DecodingResult::I64(v) => v.len(),
        DecodingResult::F16(v) => v.len(),
        DecodingResult::F32(v) => v.len(),
        DecodingResult::F64(v) => v.len(),
    }
}

/// Appends the first `n` decoded samples (at most as many as were decoded) to `out` as `f32`.
fn append_f32(buffer: &DecodingResult, n: usize, out: &mut Vec<f32>) {
    fn extend<T: ToF32>(out: &mut Vec<f32>, values: &[T], n: usize) {
        out.extend(values[..n.min(values.len())].iter().map(|v| v.to_f32()));
    }
    match buffer {
        DecodingResult::U8(v) => extend(out, v, n),
        DecodingResult::U16(v) => extend(out, v, n),
        DecodingResult::U32(v) => extend(out, v, n),
        DecodingResult::U64(v) => extend(out, v, n),
        DecodingResult::I8(v) => extend(out, v, n),
        DecodingResult::I16(v) => extend(out, v, n),
        DecodingResult::I32(v) => extend(out, v, n),
        DecodingResult::I64(v) => extend(out, v, n),
        DecodingResult::F16(v) => out.extend(v[..n.min(v.len())].iter().map(|x| x.to_f32())),
        DecodingResult::F32(v) => extend(out, v, n),
        DecodingResult::F64(v) => extend(out, v, n),
    }
}
