//! ImageJ hyperstack descriptions (`ImageJ=…\nchannels=…\nslices=…\nframes=…`): pages are stored
//! with C fastest, then Z, then T.

use std::path::Path;

use crate::DataError;

const KIND: &str = "ImageJ";

/// Sizes from an ImageJ ImageDescription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageJStack {
    pub channels: usize,
    pub slices: usize,
    pub frames: usize,
    pub images: Option<usize>,
}

pub(crate) fn is_imagej(description: &str) -> bool {
    description.starts_with("ImageJ=")
}

impl ImageJStack {
    pub(crate) fn parse(description: &str, path: &Path) -> Result<Self, DataError> {
        let get = |key: &str| -> Result<Option<usize>, DataError> {
            description
                .lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| DataError::metadata(path, KIND, format!("an integer {key}="), v.trim()))
                })
                .transpose()
        };
        let stack = Self {
            channels: get("channels")?.unwrap_or(1),
            slices: get("slices")?.unwrap_or(1),
            frames: get("frames")?.unwrap_or(1),
            images: get("images")?,
        };
        if stack.channels == 0 || stack.slices == 0 || stack.frames == 0 {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
                found: format!("ImageJ channels={}, slices={}, frames={}", stack.channels, stack.slices, stack.frames),
            });
        }
        Ok(stack)
    }

    /// Page indices of the channels at (`z`, `t`), checked against the `pages` in the file.
    pub(crate) fn select(&self, z: usize, t: usize, pages: usize, path: &Path) -> Result<Vec<usize>, DataError> {
        for (what, index, size) in [("Z", z, self.slices), ("T", t, self.frames)] {
            if index >= size {
                return Err(DataError::OutOfRange { path: path.to_path_buf(), what, index, size });
            }
        }
        let needed = self.channels.checked_mul(self.slices).and_then(|v| v.checked_mul(self.frames));
        if needed.is_none_or(|n| n > pages) {
            let what = match self.images {
                Some(n) if n > pages => "pages; data past the first IFDs (ImageJ >4 GB hack)",
                _ => "pages",
            };
            return Err(DataError::metadata(
                path,
                KIND,
                format!("channels × slices × frames = {} × {} × {} pages", self.channels, self.slices, self.frames),
                format!("{pages} {what}"),
            ));
        }
        Ok((0..self.channels).map(|c| c + self.channels * (z + self.slices * t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_selects() {
        let p = Path::new("s.tif");
        let d = "ImageJ=1.11a\nimages=12\nchannels=2\nslices=3\nframes=2\nhyperstack=true\n";
        assert!(is_imagej(d));
        let s = ImageJStack::parse(d, p).unwrap();
        assert_eq!(s.select(0, 0, 12, p).unwrap(), vec![0, 1]);
        assert_eq!(s.select(2, 1, 12, p).unwrap(), vec![10, 11]);
        assert!(matches!(s.select(3, 0, 12, p), Err(DataError::OutOfRange { .. })));
        assert!(matches!(s.select(0, 0, 1, p), Err(DataError::Metadata { .. })));
        assert!(ImageJStack::parse("ImageJ=\nchannels=x", p).is_err());
        assert!(ImageJStack::parse("ImageJ=\nchannels=0", p).is_err());
        let s = ImageJStack::parse("ImageJ=1.5\nimages=5\nslices=5", p).unwrap();
        assert_eq!(s.select(4, 0, 5, p).unwrap(), vec![4]);
    }
}
