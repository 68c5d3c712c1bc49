//! Options shared by all readers.

/// Default for [`ReadOptions::max_values`]: 2^28 values (1 GiB as `f32`).
pub const DEFAULT_MAX_VALUES: u64 = 1 << 28;

/// How to read an image.
///
/// ```
/// use cellino_data::ReadOptions;
/// let opts = ReadOptions { z: 3, ..ReadOptions::default() };
/// assert_eq!((opts.z, opts.t, opts.max_values), (3, 0, 1 << 28));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Decompression-bomb guard: the most values (channels × height × width, summed over all
    /// decoded pages or files) a read may produce. Checked against the header before any pixel
    /// is decoded; exceeding it gives [`DataError::TooLarge`](crate::DataError::TooLarge).
    pub max_values: u64,
    /// Z plane to read from an OME-TIFF or ImageJ hyperstack. Other files have a single plane,
    /// so any value but 0 is an [`OutOfRange`](crate::DataError::OutOfRange) error there.
    pub z: usize,
    /// Time point to read, like [`z`](Self::z).
    pub t: usize,
    /// Treat OME-TIFF and ImageJ files as plain multi-page TIFFs (every full-resolution page is a
    /// channel), ignoring their metadata: an escape hatch for files with broken metadata.
    pub ignore_metadata: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self { max_values: DEFAULT_MAX_VALUES, z: 0, t: 0, ignore_metadata: false }
    }
}

impl ReadOptions {
    /// The decompression-bomb guard: `found` values may be decoded.
    pub(crate) fn check_max_values(&self, path: &std::path::Path, found: u64) -> Result<(), crate::DataError> {
        if found > self.max_values {
            return Err(crate::DataError::TooLarge { path: path.to_path_buf(), limit: self.max_values, found });
        }
        Ok(())
    }

    /// For formats without Z or T axes: only `z == 0` and `t == 0` exist.
    pub(crate) fn check_single_plane(&self, path: &std::path::Path) -> Result<(), crate::DataError> {
        for (what, index) in [("Z", self.z), ("T", self.t)] {
            if index != 0 {
                return Err(crate::DataError::OutOfRange { path: path.to_path_buf(), what, index, size: 1 });
            }
        }
        Ok(())
    }
}
