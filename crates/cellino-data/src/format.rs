//! File formats and content sniffing.

use std::fmt;

/// The file formats the readers understand, recognised by their magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileFormat {
    /// Classic TIFF or BigTIFF, either byte order (includes OME-TIFF and ImageJ hyperstacks).
    Tiff,
    Png,
    Jpeg,
    /// NumPy `.npy`.
    Npy,
}

impl FileFormat {
    /// The format of `bytes` from its first bytes, whatever the file is called.
    ///
    /// ```
    /// use cellino_data::FileFormat;
    /// assert_eq!(FileFormat::sniff(b"II*\0\x08\0\0\0"), Some(FileFormat::Tiff));
    /// assert_eq!(FileFormat::sniff(b"\x89PNG\r\n\x1a\n"), Some(FileFormat::Png));
    /// assert_eq!(FileFormat::sniff(b"GIF89a"), None);
    /// ```
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        const TIFF: [&[u8]; 4] = [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"];
        if TIFF.iter().any(|m| bytes.starts_with(m)) {
            Some(Self::Tiff)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x93NUMPY") {
            Some(Self::Npy)
        } else {
            None
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tiff => "TIFF",
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Npy => "NPY",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `"49 49 2a 00 …"`-style description of the first bytes, for error messages.
pub(crate) fn describe_magic(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".into();
    }
    let hex: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("bytes [{}]", hex.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_all_formats() {
        assert_eq!(FileFormat::sniff(b"MM\0*\0\0\0\x08"), Some(FileFormat::Tiff));
        assert_eq!(FileFormat::sniff(b"II+\0\x08\0\0\0"), Some(FileFormat::Tiff));
        assert_eq!(FileFormat::sniff(b"MM\0+"), Some(FileFormat::Tiff));
        assert_eq!(FileFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(FileFormat::Jpeg));
        assert_eq!(FileFormat::sniff(b"\x93NUMPY\x01\x00"), Some(FileFormat::Npy));
        assert_eq!(FileFormat::sniff(b"II"), None);
        assert_eq!(FileFormat::sniff(b""), None);
        assert_eq!(describe_magic(b""), "an empty file");
        assert_eq!(describe_magic(b"GIF89a"), "bytes [47 49 46 38 39 61]");
    }
}
