//! Multi-channel microscopy data for cellino: readers, datasets, channel handling, the Cell-DINO
//! augmentations and a reproducible parallel loader.
//!
//! **Readers.** Every reader returns a [`MultiChannelImage`]: `f32` data in (C, H, W) row-major
//! order with the raw values of the file (not rescaled), the channel names where the file or the
//! caller gives them, and the [`SampleType`] it was stored with (whose
//! [`SampleType::nominal_range`] is what a caller normalises by, e.g. 65535 for `U16`).
//!
//! * [`read_image`] / [`read_image_bytes`]: dispatch on magic bytes ([`FileFormat::sniff`]) to
//!   - TIFF and BigTIFF: multi-page (one page per channel), interleaved or planar-separate samples,
//!     8/16/32/64-bit integers, f16/f32/f64, uncompressed, LZW, Deflate, PackBits, Zstd, JPEG,
//!     predictors, strips or tiles, either byte order;
//!   - OME-TIFF (OME-XML in the ImageDescription: SizeC/Z/T, DimensionOrder, TiffData, channel
//!     names) and ImageJ hyperstacks, one Z plane and time point chosen by [`ReadOptions`];
//!   - PNG and JPEG (8/16-bit grey, grey + alpha, RGB, RGBA; channels in that order);
//!   - NumPy `.npy`, (C, H, W) or (H, W), any integer or float type, C or Fortran order.
//! * [`read_channel_files`]: one single-channel file per channel, names from the caller.
//! * [`read_tiled_image`] / [`untile_width`]: CHAMMI images that tile the channels along the
//!   width ([`ChannelTiling`]); [`HPA_CHANNEL_NAMES`] names the channels of HPA RGBA PNGs.
//!
//! [`ReadOptions::max_values`] (default 2^28) guards against decompression bombs: the value count
//! announced by the header is checked before anything is decoded.
//!
//! **Datasets** ([`Dataset`], lazily loaded [`Record`]s with [`Target`]s and metadata):
//! [`Dataset::from_manifest`] (CSV: one path column or one column per channel; single-label,
//! multi-label columns or `;`-separated labels; other columns kept as metadata; paths relative
//! to the manifest), [`Dataset::from_folder`] (optionally one class per subfolder), and the
//! public layouts [`Dataset::chammi`], [`Dataset::hpa_fov`], [`Dataset::hpa_single_cell`].
//! [`open_dataset`] accepts the dinov2 grammar (`HPAFoV:split=TRAIN:root=/data:wildcard=
//! SEPARATE_CHANNELS`, parsed by [`DatasetSpec`]), a manifest path or a folder.
//!
//! **Channels.** [`ChannelRef`] selects by index or name ([`MultiChannelImage::select`],
//! [`Dataset::select_channels`]); [`ChannelAdapter`] maps any channel set onto the N channels of
//! a model by name priority, filling missing ones with zeros or repeats, and reports what it did
//! ([`AdapterReport`]). [`BagOfChannels`] makes every (image, channel) pair a single-channel
//! sample with the channel as a typed field ([`Sample::channel`]): N·C samples per epoch, not
//! the released code's protein-only N.
//!
//! **Transforms** ([`transform`]): the Cell-DINO multi-crop [`CellAugmentation`] (2 global 224 +
//! 8 local 96 crops by default), the evaluation / probe transforms [`EvalTransform`], and their
//! parts as [`ImageOp`]s. Bilinear and bicubic resizing, centre crop with padding, random-crop
//! padding and brightness are bit-identical to PyTorch / torchvision (tested against fixtures from
//! `xtask/py/make_data_fixtures.py`). [`IbotMasking`] / [`MaskingGenerator`] give the iBOT block
//! masks. Every random draw comes from a `rand::rngs::StdRng` passed in.
//!
//! **Loader.** [`Loader`] builds crop-major f32 batches ([`Batch`]) on a worker pool with bounded
//! prefetch. The sample at (epoch, index) is augmented with [`keyed_rng`]`(seed, epoch, index)`,
//! so batches are identical for any thread count, and [`Loader::iter_from`] resumes at a
//! [`Cursor`]. Bad samples stop the epoch with an error naming the file and manifest line, or
//! are skipped and reported ([`LoaderConfig::skip_bad_samples`]).
//!
//! **Synthetic cells** ([`synth`]): seeded single-cell crops with nucleus, microtubule, ER and
//! protein channels (1–8 channels, 8- or 16-bit), six protein-localisation classes that differ only
//! in spatial pattern (the protein channel's intensity distribution is the same for every class),
//! and a few "cell lines" of different morphology. [`write_synthetic_dataset`] writes PNG or
//! multi-page OME-TIFF files and a manifest that [`Dataset::from_manifest`] opens:
//!
//! ```
//! use cellino_data::{Dataset, SampleType, SynthConfig, write_synthetic_dataset};
//!
//! let dir = std::env::temp_dir().join(format!("cellino-synth-doc-{}", std::process::id()));
//! let config = SynthConfig { num_images: 12, size: 48, seed: 7, ..SynthConfig::default() };
//! let manifest = write_synthetic_dataset(&dir, &config)?; // dir/manifest.csv + dir/images/*.png
//! let dataset = Dataset::from_manifest(&manifest, &config.manifest_options())?;
//! assert_eq!(dataset.len(), 12);
//! assert_eq!(dataset.labels.names()[..2], ["nucleoplasm", "nucleoli"]);
//! assert!(matches!(dataset.metadata(0, "split"), Some("train" | "test")));
//! let sample = dataset.load(3)?;
//! assert_eq!(sample.image.shape(), (4, 48, 48));
//! assert_eq!(sample.image.sample_type, SampleType::U8);
//! assert_eq!(sample.image.channel_names[3].as_deref(), Some("protein"));
//! assert_eq!(sample.target.class(), Some(3)); // crop i has class i % 6
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Single-cell crops** ([`crop`]): centres from an instance mask ([`LabelImage`],
//! [`regions_from_mask`]: centroid, area and box as scikit-image's `regionprops`) or a centroid CSV
//! ([`centers_from_csv`]), square crops with the nearest pixel at index `(size / 2, size / 2)` and
//! pad / skip / shift at borders ([`crop_cells`], [`BorderPolicy`]), optionally with the other cells
//! masked out, written as multi-page TIFFs plus a manifest ([`write_crops`]).
//!
//! Malformed input (truncated files, wrong magic, zero-sized images, bad CSV rows, unknown labels
//! or channels, NaN/Inf in float images, bad options) gives a [`DataError`], never a panic.
//!
//! ```
//! use candle_core::Device;
//! use cellino_data::{
//!     BagOfChannels, CellAugmentation, CropGroup, Dataset, IbotMasking, Loader, LoaderConfig,
//!     ManifestOptions,
//! };
//!
//! // A manifest of two 4-channel 8-bit PNGs (RGBA), written to a temporary folder.
//! let dir = std::env::temp_dir().join(format!("cellino-lib-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! for name in ["a.png", "b.png"] {
//!     let pixels: Vec<u8> = (0..64 * 64 * 4).map(|v| (v * 37 % 251) as u8).collect();
//!     image::RgbaImage::from_raw(64, 64, pixels).unwrap().save(dir.join(name))?;
//! }
//! std::fs::write(dir.join("cells.csv"), "path,label\na.png,nucleoli\nb.png,cytosol\n")?;
//! let dataset = Dataset::from_manifest(dir.join("cells.csv"), &ManifestOptions::default())?
//!     .with_channel_names(["microtubules", "protein", "nucleus", "er"]);
//!
//! // Bag of Channels: 2 images × 4 channels = 8 single-channel samples.
//! let samples = BagOfChannels::new(dataset)?;
//! // Cell-DINO multi-crop, smaller than the default 224/96 to keep the example fast.
//! let augment = CellAugmentation {
//!     global: CropGroup { count: 2, size: 32, scale: (0.4, 1.0) },
//!     local: CropGroup { count: 4, size: 16, scale: (0.05, 0.4) },
//!     ..CellAugmentation::default()
//! };
//! let config = LoaderConfig {
//!     batch_size: 4,
//!     seed: 42,
//!     num_threads: 2,
//!     masking: Some(IbotMasking::for_crops(32, 16)?),
//!     ..LoaderConfig::default()
//! };
//! let loader = Loader::new(samples, augment, config, Device::Cpu)?;
//! let batch = loader.epoch(0).next().unwrap()?;
//! assert_eq!(batch.global.dims(), &[2 * 4, 1, 32, 32]); // crop-major: crop 0 of all, then crop 1
//! assert_eq!(batch.local.as_ref().unwrap().dims(), &[4 * 4, 1, 16, 16]);
//! assert_eq!(batch.masks.as_ref().unwrap().n_images, 8);
//! // Resuming at the batch's cursor gives the next batch, bit for bit.
//! let second = loader.epoch(0).nth(1).unwrap()?;
//! let resumed = loader.iter_from(batch.next).next().unwrap()?;
//! assert_eq!(resumed.samples, second.samples);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Reading a file from memory:
//!
//! ```
//! use cellino_data::{
//!     read_image_bytes, untile_width, ChannelTiling, MultiChannelImage, ReadOptions, SampleType,
//! };
//!
//! // A (2, 2, 3) uint16 NumPy array, as `np.save` writes it.
//! let header = "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 2, 3), }";
//! let mut npy = b"\x93NUMPY\x01\x00".to_vec();
//! npy.extend_from_slice(&(header.len() as u16 + 1).to_le_bytes());
//! npy.extend_from_slice(header.as_bytes());
//! npy.push(b'\n');
//! for v in 0u16..12 {
//!     npy.extend_from_slice(&(v * 1000).to_le_bytes());
//! }
//!
//! let image = read_image_bytes(&npy, "example.npy", &ReadOptions::default())?;
//! assert_eq!(image.shape(), (2, 2, 3));
//! assert_eq!(image.sample_type, SampleType::U16);
//! assert_eq!(image.channel(1).unwrap(), &[6000.0, 7000.0, 8000.0, 9000.0, 10000.0, 11000.0]);
//! assert_eq!(image.sample_type.nominal_max(), Some(65535.0));
//!
//! // CHAMMI tiling: a 2 × 6 single-channel image holding three 2 × 2 channels side by side.
//! let row = |r: f32| (0..6).map(move |x| r * 10.0 + x as f32);
//! let strip = MultiChannelImage::new(row(0.0).chain(row(1.0)).collect(), 1, 2, 6, SampleType::U8)?;
//! let split = untile_width(&strip, ChannelTiling::Square)?;
//! assert_eq!(split.shape(), (3, 2, 2));
//! assert_eq!(split.channel(2).unwrap(), &[4.0, 5.0, 14.0, 15.0]);
//!
//! // Wrong magic bytes are an error, not a panic.
//! assert!(read_image_bytes(b"GIF89a", "x.gif", &ReadOptions::default()).is_err());
//! # Ok::<(), cellino_data::DataError>(())
//! ```

mod adapter;
mod atomic;
mod boc;
mod chammi;
mod channels;
mod convert;
pub mod crop;
mod csv_table;
mod dataset;
mod error;
mod folder;
mod format;
mod hpa;
mod image;
mod imagej;
mod layout;
mod loader;
mod manifest;
mod masking;
mod npy;
mod ome;
mod options;
mod raster;
mod read;
mod rng;
mod sample_type;
mod spec;
mod summary;
pub mod synth;
mod target;
mod tiff_reader;
pub mod transform;

pub use adapter::{AdapterReport, ChannelAdapter, ChannelSlot, Fill, SlotSource};
pub use atomic::{AtomicWriteError, write_atomically};
pub use boc::BagOfChannels;
pub use chammi::{ChammiMetadata, ChammiSplit, ChammiSubset, chammi_loo_groups};
pub use channels::{ChannelId, ChannelRef, resolve_channel};
pub use crop::{
    BorderPolicy, CROP_MANIFEST_COLUMNS, CellCenter, CellCrop, CellCrops, CellRegion, CentroidCsv, CropFormat,
    CropOptions, LabelImage, SkippedCell, centers_from_csv, centers_from_mask, crop_cells, regions_from_mask,
    write_crops,
};
pub use dataset::{ChannelMap, Dataset, ImageSource, Record, Sample, SampleSource};
pub use error::{BoxedSource, DataError, ImageError};
pub use folder::{FolderOptions, IMAGE_EXTENSIONS};
pub use format::FileFormat;
pub use hpa::{
    HPA_FOV_CELL_LINES, HPA_FOV_LOCALIZATIONS, HPA_SC_CELL_LINES, HPA_SC_LOCALIZATIONS, HpaFovSplit, HpaMode,
    HpaOneSplit,
};
pub use image::MultiChannelImage;
pub use layout::{ChannelTiling, HPA_CHANNEL_NAMES, read_tiled_image, untile_width};
pub use loader::{Batch, BatchIter, Cursor, Loader, LoaderConfig, SampleInfo, SkippedSample};
pub use manifest::{ImageColumns, LabelColumns, ManifestOptions, PATH_COLUMNS};
pub use masking::{IbotMasking, MaskBatch, MaskingGenerator};
pub use options::{DEFAULT_MAX_VALUES, ReadOptions};
pub use read::{read_channel_files, read_image, read_image_bytes};
pub use rng::{RngStream, keyed_rng};
pub use sample_type::SampleType;
pub use spec::{DatasetKind, DatasetSpec, OpenedDataset, open_dataset};
pub use summary::{ChannelSet, DatasetSummary, UnreadableRow};
pub use synth::{
    SYNTH_CELL_LINES, SYNTH_CHANNELS, SYNTH_CLASSES, SynthCell, SynthConfig, SynthFormat, SynthSplit, generate_cell,
    generate_cells, write_synthetic_dataset, write_synthetic_dataset_reporting,
};
pub use target::{LabelSchema, Target};
pub use transform::{CellAugmentation, CropGroup, EvalCrop, EvalTransform, ImageOp, Pipeline, Transform, Views};
