//! Writing crops: one multi-page TIFF per cell and a manifest that `Dataset::from_manifest` opens.

use std::fmt::Write as _;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use tiff::encoder::{TiffEncoder, TiffValue, colortype};
use tiff::tags::Tag;

use super::CellCrops;
use crate::{DataError, MultiChannelImage, SampleType};

/// File format of the crops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CropFormat {
    /// Uncompressed multi-page TIFF, one page per channel in the source's sample type (`F16` is
    /// stored as `F32`, which holds every f16 value exactly), with the channel names in OME-XML.
    #[default]
    Tiff,
}

/// The columns of the manifest [`write_crops`] writes, in order. `path` is relative to the
/// manifest; `cell_label` is not called `label`, so that a manifest reader does not take the cell
/// ids for classes; the crop box `crop_y0..crop_y1`, `crop_x0..crop_x1` is in source-image pixels
/// (half-open, may extend past the image where `padded` is 1).
pub const CROP_MANIFEST_COLUMNS: [&str; 10] = [
    "path",
    "source_image",
    "cell_label",
    "centroid_y",
    "centroid_x",
    "crop_y0",
    "crop_x0",
    "crop_y1",
    "crop_x1",
    "padded",
];

fn io_error(path: &Path, source: impl Into<std::io::Error>) -> DataError {
    DataError::Io { path: path.to_path_buf(), source: source.into() }
}

/// [`write_atomically`](crate::write_atomically) with its errors as [`DataError`]s.
fn write_atomically(dest: &Path, write: impl FnOnce(&Path) -> Result<(), DataError>) -> Result<(), DataError> {
    crate::write_atomically(dest, write).map_err(|e| match e {
        crate::AtomicWriteError::Write(e) => e,
        crate::AtomicWriteError::Rename { path, source } => io_error(&path, source),
    })
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn ome_type(t: SampleType) -> &'static str {
    match t {
        SampleType::U8 => "uint8",
        SampleType::U16 => "uint16",
        SampleType::U32 | SampleType::U64 => "uint32",
        SampleType::I8 => "int8",
        SampleType::I16 => "int16",
        SampleType::I32 | SampleType::I64 => "int32",
        SampleType::F16 | SampleType::F32 => "float",
        SampleType::F64 => "double",
    }
}

fn ome_xml(image: &MultiChannelImage) -> String {
    let (c, h, w) = image.shape();
    let ty = ome_type(image.sample_type);
    let mut xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="cell crop"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="{ty}" SizeX="{w}" SizeY="{h}" SizeZ="1" SizeC="{c}" SizeT="1">"#
    );
    for (k, name) in image.channel_names.iter().enumerate() {
        let name = name.as_deref().map(|n| format!(r#" Name="{}""#, xml_escape(n))).unwrap_or_default();
        let _ = write!(xml, r#"<Channel ID="Channel:0:{k}"{name} SamplesPerPixel="1"/>"#);
    }
    let _ = write!(xml, r#"<TiffData IFD="0" PlaneCount="{c}"/></Pixels></Image></OME>"#);
    xml
}

/// One page per channel of colour type `C`, converting the f32 values with `cast`.
fn write_pages<C: colortype::ColorType, W: Write + Seek>(
    encoder: &mut TiffEncoder<W>,
    image: &MultiChannelImage,
    description: &str,
    cast: impl Fn(f32) -> C::Inner,
) -> tiff::TiffResult<()>
where
    [C::Inner]: TiffValue,
{
    let (w, h) = (image.width as u32, image.height as u32);
    for (k, plane) in image.channel_planes().enumerate() {
        let values: Vec<C::Inner> = plane.iter().map(|&v| cast(v)).collect();
        let mut page = encoder.new_image::<C>(w, h)?;
        if k == 0 {
            page.encoder().write_tag(Tag::ImageDescription, description)?;
        }
        page.write_data(&values)?;
    }
    Ok(())
}

fn write_tiff(path: &Path, image: &MultiChannelImage) -> Result<(), DataError> {
    let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
    let mut writer = BufWriter::new(file);
    let tiff_err = |e: tiff::TiffError| io_error(path, std::io::Error::other(e));
    let mut encoder = TiffEncoder::new(writer.by_ref()).map_err(tiff_err)?;
    let d = ome_xml(image);
    let e = &mut encoder;
    // The values came from a file of this type, so the casts are exact (no saturation happens).
    match image.sample_type {
        SampleType::U8 => write_pages::<colortype::Gray8, _>(e, image, &d, |v| v as u8),
        SampleType::U16 => write_pages::<colortype::Gray16, _>(e, image, &d, |v| v as u16),
        SampleType::U32 => write_pages::<colortype::Gray32, _>(e, image, &d, |v| v as u32),
        SampleType::U64 => write_pages::<colortype::Gray64, _>(e, image, &d, |v| v as u64),
        SampleType::I8 => write_pages::<colortype::GrayI8, _>(e, image, &d, |v| v as i8),
        SampleType::I16 => write_pages::<colortype::GrayI16, _>(e, image, &d, |v| v as i16),
        SampleType::I32 => write_pages::<colortype::GrayI32, _>(e, image, &d, |v| v as i32),
        SampleType::I64 => write_pages::<colortype::GrayI64, _>(e, image, &d, |v| v as i64),
        SampleType::F16 | SampleType::F32 => write_pages::<colortype::Gray32Float, _>(e, image, &d, |v| v),
        SampleType::F64 => write_pages::<colortype::Gray64Float, _>(e, image, &d, |v| v as f64),
    }
    .map_err(tiff_err)?;
    writer.flush().map_err(|e| io_error(path, e))?;
    writer.get_ref().sync_all().map_err(|e| io_error(path, e))
}

/// File-name-safe stem of the source image (`img2d.tif` → `img2d`).
fn stem(source: &Path) -> String {
    let stem = source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let safe: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    if safe.is_empty() { "image".into() } else { safe }
}

/// Writes `crops` under `out_dir` (created if needed): `crops/<source stem>_<label>.tif` per cell
/// (6+ digit label) and then `out_dir/manifest.csv` ([`CROP_MANIFEST_COLUMNS`], paths relative to
/// `out_dir`). Every file is written to a temporary name and renamed, and the manifest comes last,
/// so a manifest on disk always lists complete files. Returns the manifest's path.
///
/// The manifest opens with [`Dataset::from_manifest`](crate::Dataset::from_manifest) and default
/// options (the `path` column; no labels; the other columns are metadata).
pub fn write_crops(crops: &CellCrops, out_dir: impl AsRef<Path>, format: CropFormat) -> Result<PathBuf, DataError> {
    let CropFormat::Tiff = format;
    let out_dir = out_dir.as_ref();
    let folder = out_dir.join("crops");
    std::fs::create_dir_all(&folder).map_err(|e| io_error(&folder, e))?;
    let stem = stem(&crops.source);
    let source = crops.source.to_string_lossy();
    let mut manifest = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| io_error(&out_dir.join("manifest.csv"), std::io::Error::other(e));
    manifest.write_record(CROP_MANIFEST_COLUMNS).map_err(csv_err)?;
    for crop in &crops.crops {
        let rel = format!("crops/{stem}_{:06}.tif", crop.center.label);
        write_atomically(&out_dir.join(&rel), |tmp| write_tiff(tmp, &crop.image))?;
        let s = crops.size as i64;
        let fields = [
            rel,
            source.to_string(),
            crop.center.label.to_string(),
            // Shortest representation that reads back to the same f64.
            crop.center.y.to_string(),
            crop.center.x.to_string(),
            crop.top.to_string(),
            crop.left.to_string(),
            (crop.top + s).to_string(),
            (crop.left + s).to_string(),
            u8::from(crop.padded).to_string(),
        ];
        manifest.write_record(&fields).map_err(csv_err)?;
    }
    let bytes = manifest.into_inner().map_err(|e| csv_err(e.into_error().into()))?;
    let path = out_dir.join("manifest.csv");
    write_atomically(&path, |tmp| std::fs::write(tmp, &bytes).map_err(|e| io_error(tmp, e)))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CellCenter, CropOptions, ReadOptions, crop_cells, read_image};

    #[test]
    fn every_sample_type_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        for t in [
            SampleType::U8,
            SampleType::U16,
            SampleType::U32,
            SampleType::I8,
            SampleType::I16,
            SampleType::I32,
            SampleType::F16,
            SampleType::F32,
            SampleType::F64,
        ] {
            let data: Vec<f32> =
                (0..2 * 3 * 4).map(|v| if t == SampleType::I8 { v as f32 - 12.0 } else { v as f32 }).collect();
            let im = MultiChannelImage::new(data, 2, 3, 4, t).unwrap().with_channel_names(["dna", "a<&>\"b"]).unwrap();
            let options = CropOptions { source: format!("f {}.tif", t.name()).into(), ..CropOptions::new(3) };
            let crops = crop_cells(&im, None, &[CellCenter { label: 4, y: 1.0, x: 1.6 }], &options).unwrap();
            let manifest = write_crops(&crops, dir.path(), CropFormat::Tiff).unwrap();
            let name = format!("crops/f_{}_000004.tif", t.name());
            let back = read_image(dir.path().join(&name), &ReadOptions::default()).unwrap();
            let expected = if t == SampleType::F16 { SampleType::F32 } else { t };
            assert_eq!(back.sample_type, expected, "{t:?}");
            assert_eq!(back.data, crops.crops[0].image.data, "{t:?}");
            assert_eq!(back.channel_names, im.channel_names, "{t:?}");
            let text = std::fs::read_to_string(manifest).unwrap();
            assert!(text.ends_with(&format!("{name},f {}.tif,4,1,1.6,0,1,3,4,0\n", t.name())), "{text}");
        }
        // Nothing temporary is left.
        let leftovers = std::fs::read_dir(dir.path().join("crops")).unwrap().filter_map(Result::ok);
        assert!(leftovers.into_iter().all(|e| !e.file_name().to_string_lossy().starts_with('.')));
    }
}
