//! Synthetic multi-channel single-cell crops for tests, benchmarks and the quickstart.
//!
//! Each crop shows one cell of a random "cell line" (size, elongation, nucleus size, boundary
//! irregularity), at a random position, rotation and brightness, with up to 8 channels:
//! nucleus, microtubules, ER and protein, then actin, Golgi, lysosome and peroxisome
//! ([`SynthConfig::channel_names`]; with fewer than 4 channels the protein channel is the last).
//! The protein channel shows one of six localisation classes ([`SYNTH_CLASSES`]).
//!
//! **Only the spatial pattern tells the classes apart.** The structural channels do not depend
//! on the class, and the protein channel's values are rank-matched to an intensity distribution
//! drawn independently of the class (the pixel of rank r gets `b + a·((r+½)/n)^γ`, with `b`, `a`,
//! `γ` random per cell): the multiset of protein values, hence its mean, standard deviation,
//! total intensity and histogram, has the same distribution for every class. A classifier on
//! per-channel intensity statistics is at chance; one that looks at where the signal is is not
//! (see `tests/synth_generator.rs`).
//!
//! Every random draw for crop `i` comes from [`keyed_rng`]`(seed ^ SYNTH_TAG, 0, i, Sample)`, so
//! a crop depends only on the configuration and its index, whatever the thread count.

mod render;

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rand::Rng;
use rayon::prelude::*;

use crate::{DataError, LabelColumns, ManifestOptions, MultiChannelImage, RngStream, SampleType, keyed_rng};
use render::{CellFrame, LINE_SHAPES};

/// The protein-localisation classes, in label order.
pub const SYNTH_CLASSES: [&str; 6] =
    ["nucleoplasm", "nucleoli", "cytosol", "plasma_membrane", "mitochondria", "vesicles"];

/// The synthetic cell lines (morphologies), in order.
pub const SYNTH_CELL_LINES: [&str; 4] = ["round", "elongated", "large_flat", "small_compact"];

/// Names of the channels of an 8-channel crop; fewer channels take a prefix, except that the
/// protein channel is always present (see [`SynthConfig::channel_names`]).
pub const SYNTH_CHANNELS: [&str; 8] =
    ["nucleus", "microtubules", "er", "protein", "actin", "golgi", "lysosome", "peroxisome"];

/// The most channels a synthetic crop can have.
pub const SYNTH_MAX_CHANNELS: usize = SYNTH_CHANNELS.len();

/// Mixed into the seed so that the generator's draws never coincide with a loader's.
const SYNTH_TAG: u64 = 0x5359_4E54_4845_5449;

/// How [`write_synthetic_dataset`] stores the crops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SynthFormat {
    /// PNG for 8-bit crops with at most 4 channels (grey, grey + alpha, RGB, RGBA), else
    /// multi-page TIFF.
    #[default]
    Auto,
    /// PNG (8- or 16-bit); at most 4 channels.
    Png,
    /// Multi-page TIFF, one page per channel, with OME-XML naming the channels.
    Tiff,
}

/// Train or test, as written in the manifest's `split` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SynthSplit {
    Train,
    Test,
}

impl SynthSplit {
    /// `"train"` or `"test"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Test => "test",
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    pub seed: u64,
    /// Number of crops.
    pub num_images: usize,
    /// Height and width of a crop in pixels (16..=2048).
    pub size: usize,
    /// Channels per crop (1..=8).
    pub channels: usize,
    /// Number of localisation classes, the first of [`SYNTH_CLASSES`] (1..=6). Crop `i` has
    /// class `i % classes`, so the classes are balanced.
    pub classes: usize,
    /// Number of cell lines, the first of [`SYNTH_CELL_LINES`] (1..=4), drawn uniformly per crop
    /// independently of the class.
    pub cell_lines: usize,
    /// [`SampleType::U8`] or [`SampleType::U16`].
    pub sample_type: SampleType,
    /// Standard deviation of the additive Gaussian noise, as a fraction of the full range.
    pub noise: f32,
    /// Probability that a crop goes to the test split.
    pub test_fraction: f32,
    pub format: SynthFormat,
}

impl Default for SynthConfig {
    /// 600 crops of 64 × 64 × 4, 8-bit, 6 classes, 3 cell lines, 20 % test, seed 0.
    fn default() -> Self {
        Self {
            seed: 0,
            num_images: 600,
            size: 64,
            channels: 4,
            classes: SYNTH_CLASSES.len(),
            cell_lines: 3,
            sample_type: SampleType::U8,
            noise: 0.01,
            test_fraction: 0.2,
            format: SynthFormat::Auto,
        }
    }
}

impl SynthConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), DataError> {
        let check = |ok: bool, what: &'static str, expected: &str, found: String| {
            if ok { Ok(()) } else { Err(DataError::invalid(what, expected, found)) }
        };
        check(self.num_images >= 1, "SynthConfig::num_images", "at least 1", self.num_images.to_string())?;
        check((16..=2048).contains(&self.size), "SynthConfig::size", "16..=2048", self.size.to_string())?;
        check(
            (1..=SYNTH_MAX_CHANNELS).contains(&self.channels),
            "SynthConfig::channels",
            "1..=8",
            self.channels.to_string(),
        )?;
        check(
            (1..=SYNTH_CLASSES.len()).contains(&self.classes),
            "SynthConfig::classes",
            "1..=6",
            self.classes.to_string(),
        )?;
        check(
            (1..=SYNTH_CELL_LINES.len()).contains(&self.cell_lines),
            "SynthConfig::cell_lines",
            "1..=4",
            self.cell_lines.to_string(),
        )?;
        check(
            matches!(self.sample_type, SampleType::U8 | SampleType::U16),
            "SynthConfig::sample_type",
            "U8 or U16",
            self.sample_type.to_string(),
        )?;
        check(
            self.noise.is_finite() && (0.0..=1.0).contains(&self.noise),
            "SynthConfig::noise",
            "a number in [0, 1]",
            self.noise.to_string(),
        )?;
        check(
            (0.0..=1.0).contains(&self.test_fraction),
            "SynthConfig::test_fraction",
            "a number in [0, 1]",
            self.test_fraction.to_string(),
        )?;
        check(
            self.format != SynthFormat::Png || self.channels <= 4,
            "SynthConfig::format",
            "at most 4 channels for PNG",
            format!("{} channels", self.channels),
        )
    }

    /// Index of the protein channel: 3, or the last channel when there are fewer than 4.
    pub fn protein_channel(&self) -> usize {
        self.channels.clamp(1, 4) - 1
    }

    /// The channel names, e.g. `[nucleus, microtubules, er, protein]` for 4 channels,
    /// `[nucleus, microtubules, protein]` for 3 and `[protein]` for 1.
    pub fn channel_names(&self) -> Vec<String> {
        let p = self.protein_channel();
        (0..self.channels).map(|c| if c == p { "protein" } else { SYNTH_CHANNELS[c] }.to_string()).collect()
    }

    /// The class names, in label order.
    pub fn class_names(&self) -> Vec<String> {
        SYNTH_CLASSES[..self.classes.min(SYNTH_CLASSES.len())].iter().map(|s| s.to_string()).collect()
    }

    /// The cell-line names.
    pub fn cell_line_names(&self) -> Vec<String> {
        SYNTH_CELL_LINES[..self.cell_lines.min(SYNTH_CELL_LINES.len())].iter().map(|s| s.to_string()).collect()
    }

    /// Options that open the manifest of [`write_synthetic_dataset`] with labels in
    /// [`class_names`](Self::class_names) order and the channels named.
    pub fn manifest_options(&self) -> ManifestOptions {
        ManifestOptions {
            labels: LabelColumns::Single { column: "label".into(), classes: Some(self.class_names()) },
            channel_names: Some(self.channel_names()),
            ..ManifestOptions::default()
        }
    }

    fn file_format(&self) -> SynthFormat {
        match self.format {
            SynthFormat::Auto if self.sample_type == SampleType::U8 && self.channels <= 4 => SynthFormat::Png,
            SynthFormat::Auto => SynthFormat::Tiff,
            f => f,
        }
    }
}

/// One generated crop.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthCell {
    /// (C, H, W) raw integer values (0..=255 or 0..=65535) as `f32`, channels named.
    pub image: MultiChannelImage,
    /// Index into [`SYNTH_CLASSES`].
    pub label: usize,
    /// Index into [`SYNTH_CELL_LINES`].
    pub cell_line: usize,
    pub split: SynthSplit,
}

/// Generates crop `index` of `config` (deterministic in `config` and `index`).
pub fn generate_cell(config: &SynthConfig, index: usize) -> Result<SynthCell, DataError> {
    config.validate()?;
    render_cell(config, index)
}

/// Generates every crop of `config`, in parallel (the result does not depend on the thread count).
pub fn generate_cells(config: &SynthConfig) -> Result<Vec<SynthCell>, DataError> {
    config.validate()?;
    (0..config.num_images).into_par_iter().map(|i| render_cell(config, i)).collect()
}

fn render_cell(config: &SynthConfig, index: usize) -> Result<SynthCell, DataError> {
    let mut rng = keyed_rng(config.seed ^ SYNTH_TAG, 0, index as u64, RngStream::Sample);
    let label = index % config.classes;
    let cell_line = rng.random_range(0..config.cell_lines);
    let split = if rng.random::<f32>() < config.test_fraction { SynthSplit::Test } else { SynthSplit::Train };
    let size = config.size;
    let n = size * size;
    let frame = CellFrame::new(&mut rng, size, &LINE_SHAPES[cell_line]);
    let protein = config.protein_channel();
    let mut data = vec![0.0f32; config.channels * n];
    for (c, plane) in data.chunks_exact_mut(n).enumerate() {
        if c == protein {
            frame.protein_pattern(&mut rng, label, plane);
            render::match_intensity_distribution(&mut rng, plane);
        } else {
            match c {
                0 => frame.nucleus_channel(&mut rng, plane),
                1 => frame.microtubule_channel(&mut rng, plane),
                2 => frame.er_channel(&mut rng, plane),
                k => frame.extra_channel(&mut rng, k - 4, plane),
            }
            render::scale_structural(&mut rng, plane);
        }
        render::add_noise(&mut rng, plane, config.noise);
    }
    let max = config.sample_type.nominal_max().unwrap_or(255.0) as f32;
    for v in &mut data {
        *v = (*v * max).round().clamp(0.0, max);
    }
    let image = MultiChannelImage::new(data, config.channels, size, size, config.sample_type)?
        .with_channel_names(config.channel_names())?;
    Ok(SynthCell { image, label, cell_line, split })
}

fn io_error(path: &Path, source: impl Into<std::io::Error>) -> DataError {
    DataError::Io { path: path.to_path_buf(), source: source.into() }
}

fn write_png(path: &Path, image: &MultiChannelImage) -> Result<(), DataError> {
    use image::{DynamicImage, ImageBuffer};
    let (c, h, w) = image.shape();
    let n = h * w;
    // (C, H, W) planes → interleaved (H, W, C) samples.
    let interleaved = || (0..n).flat_map(move |p| (0..c).map(move |k| image.data[k * n + p]));
    let (w32, h32) = (w as u32, h as u32);
    let dynamic = if image.sample_type == SampleType::U8 {
        let buf: Vec<u8> = interleaved().map(|v| v as u8).collect();
        match c {
            1 => ImageBuffer::from_raw(w32, h32, buf).map(DynamicImage::ImageLuma8),
            2 => ImageBuffer::from_raw(w32, h32, buf).map(DynamicImage::ImageLumaA8),
            3 => ImageBuffer::from_raw(w32, h32, buf).map(DynamicImage::ImageRgb8),
            _ => ImageBuffer::from_raw(w32, h32, buf).map(DynamicImage::ImageRgba8),
        }
    } else {
        let buf: Vec<u16> = interleaved().map(|v| v as u16).collect();
        match c {
            1 => ImageBuffer::from_raw(w32, h32, buf).map(DynamicImage::ImageLuma16),
            2 => ImageBuffer::from_raw(w32, h32, buf).map(DynamicImage::ImageLumaA16),
            3 => ImageBuffer::from_raw(w32, h32, buf).map(DynamicImage::ImageRgb16),
            _ => ImageBuffer::from_raw(w32, h32, buf).map(DynamicImage::ImageRgba16),
        }
    };
    let dynamic =
        dynamic.ok_or_else(|| DataError::shape(path, "PNG buffer", format!("{c} × {h} × {w} values"), "fewer"))?;
    dynamic.save_with_format(path, image::ImageFormat::Png).map_err(|e| io_error(path, std::io::Error::other(e)))
}

fn ome_xml(image: &MultiChannelImage, names: &[String]) -> String {
    let (c, h, w) = image.shape();
    let ty = if image.sample_type == SampleType::U8 { "uint8" } else { "uint16" };
    let mut xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="synthetic cell"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="{ty}" SizeX="{w}" SizeY="{h}" SizeZ="1" SizeC="{c}" SizeT="1">"#
    );
    for (k, name) in names.iter().enumerate() {
        let _ = write!(xml, r#"<Channel ID="Channel:0:{k}" Name="{name}" SamplesPerPixel="1"/>"#);
    }
    let _ = write!(xml, r#"<TiffData IFD="0" PlaneCount="{c}"/></Pixels></Image></OME>"#);
    xml
}

fn write_tiff(path: &Path, image: &MultiChannelImage, names: &[String]) -> Result<(), DataError> {
    use tiff::encoder::{TiffEncoder, colortype};
    use tiff::tags::Tag;
    let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
    let tiff_err = |e: tiff::TiffError| io_error(path, std::io::Error::other(e));
    let mut writer = BufWriter::new(file);
    let mut encoder = TiffEncoder::new(writer.by_ref()).map_err(tiff_err)?;
    let description = ome_xml(image, names);
    let (w, h) = (image.width as u32, image.height as u32);
    for (k, plane) in image.channel_planes().enumerate() {
        if image.sample_type == SampleType::U8 {
            let values: Vec<u8> = plane.iter().map(|&v| v as u8).collect();
            let mut page = encoder.new_image::<colortype::Gray8>(w, h).map_err(tiff_err)?;
            if k == 0 {
                page.encoder().write_tag(Tag::ImageDescription, description.as_str()).map_err(tiff_err)?;
            }
            page.write_data(&values).map_err(tiff_err)?;
        } else {
            let values: Vec<u16> = plane.iter().map(|&v| v as u16).collect();
            let mut page = encoder.new_image::<colortype::Gray16>(w, h).map_err(tiff_err)?;
            if k == 0 {
                page.encoder().write_tag(Tag::ImageDescription, description.as_str()).map_err(tiff_err)?;
            }
            page.write_data(&values).map_err(tiff_err)?;
        }
    }
    // The encoder writes as it goes; flush what is buffered.
    writer.flush().map_err(|e| io_error(path, e))
}

/// Generates the crops of `config` and writes them under `dir`: `images/cell_NNNNNN.png` (8-bit,
/// ≤ 4 channels) or `.tif` (multi-page, OME-XML channel names; see [`SynthFormat`]), and
/// `dir/manifest.csv` with the columns `path,label,cell_line,split` (paths relative to `dir`).
/// Returns the manifest's path; open it with
/// [`Dataset::from_manifest`](crate::Dataset::from_manifest) and
/// [`SynthConfig::manifest_options`]. Files are written in parallel; their bytes depend only on
/// `config`.
pub fn write_synthetic_dataset(dir: impl AsRef<Path>, config: &SynthConfig) -> Result<PathBuf, DataError> {
    write_synthetic_dataset_reporting(dir, config, &mut |_, _| {})
}

/// [`write_synthetic_dataset`], calling `progress(done, total)` after every image written (for
/// a progress bar). The images are written in parallel, so the callback is called from worker
/// threads, one call at a time, with `done` counting up by one.
pub fn write_synthetic_dataset_reporting(
    dir: impl AsRef<Path>,
    config: &SynthConfig,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<PathBuf, DataError> {
    config.validate()?;
    let dir = dir.as_ref();
    let images = dir.join("images");
    std::fs::create_dir_all(&images).map_err(|e| io_error(&images, e))?;
    let format = config.file_format();
    let ext = if format == SynthFormat::Png { "png" } else { "tif" };
    let names = config.channel_names();
    let digits = config.num_images.saturating_sub(1).to_string().len().max(6);
    // The count and the callback under one lock, so that the calls see 1, 2, … in order.
    let written = Mutex::new((0, progress));
    let rows: Vec<(String, usize, usize, SynthSplit)> = (0..config.num_images)
        .into_par_iter()
        .map(|i| {
            let cell = render_cell(config, i)?;
            let rel = format!("images/cell_{i:0digits$}.{ext}");
            let path = dir.join(&rel);
            match format {
                SynthFormat::Png => write_png(&path, &cell.image)?,
                _ => write_tiff(&path, &cell.image, &names)?,
            }
            let mut guard = written.lock().unwrap_or_else(PoisonError::into_inner);
            let (done, report) = &mut *guard;
            *done += 1;
            report(*done, config.num_images);
            Ok((rel, cell.label, cell.cell_line, cell.split))
        })
        .collect::<Result<_, DataError>>()?;
    let mut csv = String::from("path,label,cell_line,split\n");
    for (rel, label, line, split) in rows {
        let _ = writeln!(csv, "{rel},{},{},{}", SYNTH_CLASSES[label], SYNTH_CELL_LINES[line], split.name());
    }
    let manifest = dir.join("manifest.csv");
    std::fs::write(&manifest, csv).map_err(|e| io_error(&manifest, e))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reporting_counts_images_and_writes_the_same_files() {
        let config = SynthConfig { num_images: 7, size: 16, ..SynthConfig::default() };
        let (plain, reported) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let manifest = write_synthetic_dataset(plain.path(), &config).unwrap();
        let mut calls = Vec::new();
        let got = write_synthetic_dataset_reporting(reported.path(), &config, &mut |done, total| {
            calls.push((done, total));
        })
        .unwrap();
        assert_eq!(calls, (1..=7).map(|i| (i, 7)).collect::<Vec<_>>());
        let read = |p: &Path| std::fs::read(p).unwrap();
        assert_eq!(read(&got), read(&manifest));
        for i in 0..7 {
            let rel = format!("images/cell_{i:06}.png");
            assert_eq!(read(&reported.path().join(&rel)), read(&plain.path().join(&rel)), "{rel}");
        }
    }
}
