//! Multi-channel microscopy images for cellino.
//!
//! Every reader returns a [`MultiChannelImage`]: `f32` data in (C, H, W) row-major order with the
//! raw values of the file (not rescaled), the channel names where the file or the caller gives
//! them, and the [`SampleType`] it was stored with (whose [`SampleType::nominal_range`] is what a
//! caller normalises by, e.g. 65535 for `U16`).
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
//! announced by the header is checked before anything is decoded. Malformed input (truncated
//! files, wrong magic, zero-sized images, contradictory metadata) gives an [`ImageError`], never a
//! panic.
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
//! # Ok::<(), cellino_data::ImageError>(())
//! ```

mod convert;
mod error;
mod format;
mod image;
mod imagej;
mod layout;
mod npy;
mod ome;
mod options;
mod raster;
mod read;
mod sample_type;
mod tiff_reader;

pub use error::{BoxedSource, ImageError};
pub use format::FileFormat;
pub use image::MultiChannelImage;
pub use layout::{ChannelTiling, HPA_CHANNEL_NAMES, read_tiled_image, untile_width};
pub use options::{DEFAULT_MAX_VALUES, ReadOptions};
pub use read::{read_channel_files, read_image, read_image_bytes};
pub use sample_type::SampleType;
