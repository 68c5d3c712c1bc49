//! OME-XML (from an OME-TIFF's ImageDescription): sizes, DimensionOrder, channel names and the
//! plane → IFD map. Only the first `Image` is used.

use std::path::Path;

use crate::DataError;

const KIND: &str = "OME-XML";

/// The non-spatial axes of an OME image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Axis {
    Z,
    C,
    T,
}

/// One `TiffData` element: `plane_count` planes starting at (`first_z`, `first_c`, `first_t`), in
/// DimensionOrder, stored from IFD `ifd` on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TiffData {
    ifd: usize,
    first: [usize; 3],
    plane_count: Option<usize>,
}

/// What the readers need from `Image/Pixels`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OmePixels {
    pub size_x: usize,
    pub size_y: usize,
    pub size_z: usize,
    pub size_c: usize,
    pub size_t: usize,
    /// Z, C, T from fastest- to slowest-varying (DimensionOrder without the leading "XY").
    order: [Axis; 3],
    /// `Name` of each `Channel` element (`None` where absent).
    pub channel_names: Vec<Option<String>>,
    tiff_data: Vec<TiffData>,
}

/// Whether an ImageDescription holds OME-XML.
pub(crate) fn is_ome(description: &str) -> bool {
    let d = description.trim_start();
    (d.starts_with("<?xml") || d.starts_with("<OME")) && d.contains("<OME")
}

fn bad(path: &Path, expected: impl Into<String>, found: impl Into<String>) -> DataError {
    DataError::metadata(path, KIND, expected, found)
}

fn attr_usize(node: roxmltree::Node<'_, '_>, name: &str, path: &Path) -> Result<Option<usize>, DataError> {
    node.attribute(name)
        .map(|v| {
            v.trim().parse::<usize>().map_err(|_| {
                bad(path, format!("a non-negative integer {}@{name}", node.tag_name().name()), format!("{v:?}"))
            })
        })
        .transpose()
}

fn child<'a, 'input>(node: roxmltree::Node<'a, 'input>, name: &str) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|n| n.is_element() && n.tag_name().name() == name)
}

impl OmePixels {
    pub(crate) fn parse(xml: &str, path: &Path) -> Result<Self, DataError> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| bad(path, "well-formed XML", e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "OME" {
            return Err(bad(path, "an <OME> root element", format!("<{}>", root.tag_name().name())));
        }
        if child(root, "BinaryOnly").is_some() {
            return Err(DataError::unsupported(
                path,
                "OME-TIFF layout",
                "metadata in this file",
                "BinaryOnly (metadata in a companion file)",
            ));
        }
        let image = child(root, "Image").ok_or_else(|| bad(path, "an <Image> element", "none"))?;
        let pixels = child(image, "Pixels").ok_or_else(|| bad(path, "a <Pixels> element", "none"))?;
        let size = |name: &str| -> Result<usize, DataError> {
            attr_usize(pixels, name, path)?.ok_or_else(|| bad(path, format!("Pixels@{name}"), "no such attribute"))
        };
        let (size_x, size_y) = (size("SizeX")?, size("SizeY")?);
        let (size_z, size_c, size_t) = (size("SizeZ")?, size("SizeC")?, size("SizeT")?);
        if [size_x, size_y, size_z, size_c, size_t].contains(&0) {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
                found: format!("OME sizes X {size_x}, Y {size_y}, Z {size_z}, C {size_c}, T {size_t}"),
            });
        }
        if size_z.checked_mul(size_c).and_then(|v| v.checked_mul(size_t)).is_none() {
            return Err(bad(path, "a plane count that fits in usize", "SizeZ × SizeC × SizeT overflows"));
        }
        let dim = pixels.attribute("DimensionOrder").unwrap_or("XYZCT");
        let order =
            parse_order(dim).ok_or_else(|| bad(path, "DimensionOrder XY followed by Z, C, T in any order", dim))?;

        let channel_names = pixels
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "Channel")
            .map(|n| n.attribute("Name").map(str::to_owned))
            .collect();

        let mut tiff_data = Vec::new();
        let mut files: Vec<&str> = Vec::new();
        for td in pixels.children().filter(|n| n.is_element() && n.tag_name().name() == "TiffData") {
            let ifd = attr_usize(td, "IFD", path)?;
            let count = attr_usize(td, "PlaneCount", path)?;
            // OME schema: PlaneCount defaults to 1 when IFD is given, else to all planes.
            let plane_count = count.or(ifd.map(|_| 1));
            tiff_data.push(TiffData {
                ifd: ifd.unwrap_or(0),
                first: [
                    attr_usize(td, "FirstZ", path)?.unwrap_or(0),
                    attr_usize(td, "FirstC", path)?.unwrap_or(0),
                    attr_usize(td, "FirstT", path)?.unwrap_or(0),
                ],
                plane_count,
            });
            if let Some(name) = child(td, "UUID").and_then(|u| u.attribute("FileName"))
                && !files.contains(&name)
            {
                files.push(name);
            }
        }
        if files.len() > 1 {
            return Err(DataError::unsupported(
                path,
                "OME-TIFF layout",
                "all planes in one file",
                format!("a multi-file data set ({})", files.join(", ")),
            ));
        }
        Ok(Self { size_x, size_y, size_z, size_c, size_t, order, channel_names, tiff_data })
    }

    /// The IFD of every channel plane at (`z`, `t`), and the channel names, for pages that hold
    /// `samples` samples each (RGB OME-TIFFs store 3 of the SizeC channels in one page).
    pub(crate) fn select(
        &self,
        z: usize,
        t: usize,
        samples: usize,
        path: &Path,
    ) -> Result<(Vec<usize>, Vec<Option<String>>), DataError> {
        for (what, index, size) in [("Z", z, self.size_z), ("T", t, self.size_t)] {
            if index >= size {
                return Err(DataError::OutOfRange { path: path.to_path_buf(), what, index, size });
            }
        }
        let samples = samples.max(1);
        if !self.size_c.is_multiple_of(samples) {
            return Err(bad(
                path,
                format!("SizeC a multiple of the {samples} samples per page"),
                format!("SizeC {}", self.size_c),
            ));
        }
        let planes_c = self.size_c / samples;
        let sizes = [self.size_z, planes_c, self.size_t];
        let total = sizes.iter().product::<usize>();
        let mut ifds = Vec::with_capacity(planes_c);
        for c in 0..planes_c {
            let plane = plane_index(self.order, sizes, [z, c, t]);
            let ifd = self
                .ifd_of_plane(plane, sizes, total)
                .ok_or_else(|| bad(path, format!("a TiffData entry for plane Z {z}, C {c}, T {t}"), "none"))?;
            ifds.push(ifd);
        }
        let names =
            if self.channel_names.len() == self.size_c { self.channel_names.clone() } else { vec![None; self.size_c] };
        Ok((ifds, names))
    }

    fn ifd_of_plane(&self, plane: usize, sizes: [usize; 3], total: usize) -> Option<usize> {
        if self.tiff_data.is_empty() {
            return Some(plane);
        }
        // Later TiffData entries override earlier ones, as in Bio-Formats.
        self.tiff_data.iter().rev().find_map(|td| {
            if td.first.iter().zip(sizes).any(|(&f, s)| f >= s) {
                return None;
            }
            let start = plane_index(self.order, sizes, td.first);
            let count = td.plane_count.unwrap_or(total);
            (plane >= start && plane - start < count).then(|| td.ifd.checked_add(plane - start))?
        })
    }
}

fn parse_order(dim: &str) -> Option<[Axis; 3]> {
    let rest = dim.trim().strip_prefix("XY")?;
    let mut order = [Axis::Z; 3];
    let mut seen = [false; 3];
    if rest.len() != 3 {
        return None;
    }
    for (slot, ch) in order.iter_mut().zip(rest.chars()) {
        let (axis, i) = match ch {
            'Z' => (Axis::Z, 0),
            'C' => (Axis::C, 1),
            'T' => (Axis::T, 2),
            _ => return None,
        };
        if std::mem::replace(&mut seen[i], true) {
            return None;
        }
        *slot = axis;
    }
    Some(order)
}

/// Linear plane index of (z, c, t) with `order` fastest first; `sizes` and `zct` are in Z, C, T
/// order.
fn plane_index(order: [Axis; 3], sizes: [usize; 3], zct: [usize; 3]) -> usize {
    let slot = |a: Axis| match a {
        Axis::Z => 0,
        Axis::C => 1,
        Axis::T => 2,
    };
    let [a0, a1, a2] = order.map(slot);
    zct[a0] + sizes[a0] * (zct[a1] + sizes[a1] * zct[a2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(order: &str, body: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels DimensionOrder="{order}" SizeX="4" SizeY="3" SizeZ="2" SizeC="3" SizeT="2" Type="uint8">{body}</Pixels></Image></OME>"#
        )
    }

    #[test]
    fn dimension_orders_map_planes() {
        let p = Path::new("a.ome.tif");
        let m = OmePixels::parse(&xml("XYZCT", ""), p).unwrap();
        // Z fastest, then C, then T: plane = z + 2 (c + 3 t).
        assert_eq!(m.select(1, 1, 1, p).unwrap().0, vec![7, 9, 11]);
        let m = OmePixels::parse(&xml("XYCTZ", ""), p).unwrap();
        // plane = c + 3 (t + 2 z).
        assert_eq!(m.select(1, 0, 1, p).unwrap().0, vec![6, 7, 8]);
        assert!(matches!(m.select(2, 0, 1, p), Err(DataError::OutOfRange { what: "Z", .. })));
        assert!(matches!(m.select(0, 5, 1, p), Err(DataError::OutOfRange { what: "T", .. })));
        assert_eq!(m.select(0, 0, 3, p).unwrap().0, vec![0]);
        assert!(m.select(0, 0, 2, p).is_err());
    }

    #[test]
    fn tiff_data_and_names() {
        let p = Path::new("a.ome.tif");
        let body = r#"<Channel Name="DNA"/><Channel/><Channel Name="ER"/>
            <TiffData IFD="10" PlaneCount="12"/><TiffData FirstC="1" IFD="3"/>"#;
        let m = OmePixels::parse(&xml("XYCZT", body), p).unwrap();
        let (ifds, names) = m.select(0, 0, 1, p).unwrap();
        assert_eq!(ifds, vec![10, 3, 12]);
        assert_eq!(names, vec![Some("DNA".into()), None, Some("ER".into())]);
        let m = OmePixels::parse(&xml("XYCZT", r#"<TiffData FirstC="1" IFD="3"/>"#), p).unwrap();
        assert!(matches!(m.select(0, 0, 1, p), Err(DataError::Metadata { .. })));
    }

    #[test]
    fn rejects_bad_xml() {
        let p = Path::new("a.ome.tif");
        for bad_xml in [
            "<OME><Image><Pixels",
            "<OME></OME>",
            "<NotOME/>",
            &xml("XYZZT", ""),
            &xml("XYZCTQ", ""),
            &xml("XYZCT", "").replace("SizeC=\"3\"", "SizeC=\"-3\""),
            &xml("XYZCT", "").replace("SizeC=\"3\"", "SizeC=\"0\""),
            &xml("XYZCT", "").replace("SizeZ=\"2\"", "SizeZ=\"18446744073709551615\""),
            &xml("XYZCT", r#"<TiffData IFD="x"/>"#),
            &xml("XYZCT", "<BinaryOnly/>").replace("<Image", "<BinaryOnly/><Image"),
        ] {
            assert!(OmePixels::parse(bad_xml, p).is_err(), "{bad_xml}");
        }
        let two_files = xml(
            "XYZCT",
            r#"<TiffData IFD="0"><UUID FileName="a.tif">u</UUID></TiffData><TiffData IFD="0" FirstC="1"><UUID FileName="b.tif">v</UUID></TiffData>"#,
        );
        assert!(matches!(OmePixels::parse(&two_files, p), Err(DataError::Unsupported { .. })));
        assert!(is_ome("  <?xml version=\"1.0\"?><OME>"));
        assert!(!is_ome("ImageJ=1.53"));
    }
}
