//! The dinov2 dataset-string grammar (`HPAFoV:split=TRAIN:root=/data:wildcard=SEPARATE_CHANNELS`)
//! and [`open_dataset`], which also accepts a manifest path or a folder.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{
    BagOfChannels, ChammiMetadata, ChammiSplit, ChammiSubset, DataError, Dataset, FolderOptions, HpaFovSplit, HpaMode,
    HpaOneSplit, ManifestOptions, SampleSource,
};

/// The named datasets of the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// `HPAone`: HPA single cell.
    HpaOne,
    /// `HPAFoV`: HPA field of view.
    HpaFov,
    /// `CHAMMI_WTC`, `CHAMMI_HPA`, `CHAMMI_CP`.
    Chammi(ChammiSubset),
}

impl DatasetKind {
    /// The name as written in a dataset string.
    pub fn name(self) -> &'static str {
        match self {
            Self::HpaOne => "HPAone",
            Self::HpaFov => "HPAFoV",
            Self::Chammi(ChammiSubset::Wtc) => "CHAMMI_WTC",
            Self::Chammi(ChammiSubset::Hpa) => "CHAMMI_HPA",
            Self::Chammi(ChammiSubset::Cp) => "CHAMMI_CP",
        }
    }

    const ALL: [Self; 5] = [
        Self::HpaOne,
        Self::HpaFov,
        Self::Chammi(ChammiSubset::Wtc),
        Self::Chammi(ChammiSubset::Hpa),
        Self::Chammi(ChammiSubset::Cp),
    ];

    /// The kind called `name` (ASCII case ignored).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A parsed dataset string `Name:key=value:…` with keys `root`, `extra`, `split`, `mode`,
/// `wildcard`. `split`, `mode` and `wildcard` are stored upper-cased (upstream compares
/// `Enum.value.upper()`); `root` and `extra` as written.
///
/// ```
/// use cellino_data::{DatasetKind, DatasetSpec};
/// let spec: DatasetSpec = "HPAFoV:split=train:root=/data:wildcard=SEPARATE_CHANNELS".parse()?;
/// assert_eq!(spec.kind, DatasetKind::HpaFov);
/// assert_eq!(spec.split.as_deref(), Some("TRAIN"));
/// assert!(spec.separate_channels());
/// assert!("HPAFoV:split=TRAIN".parse::<DatasetSpec>().is_err()); // no root
/// assert!("HPAFoV:root=/d:colour=red".parse::<DatasetSpec>().is_err()); // unknown key
/// # Ok::<(), cellino_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSpec {
    pub kind: DatasetKind,
    pub root: PathBuf,
    pub split: Option<String>,
    pub mode: Option<String>,
    pub wildcard: Option<String>,
    pub extra: Option<String>,
}

impl FromStr for DatasetSpec {
    type Err = DataError;

    fn from_str(spec: &str) -> Result<Self, DataError> {
        let err = |expected: &str, found: String| DataError::DatasetSpec {
            spec: spec.to_owned(),
            expected: expected.to_owned(),
            found,
        };
        let mut tokens = spec.split(':');
        let name = tokens.next().unwrap_or_default();
        let kind = DatasetKind::from_name(name).ok_or_else(|| {
            err(&format!("a dataset name among {:?}", DatasetKind::ALL.map(DatasetKind::name)), format!("{name:?}"))
        })?;
        let (mut root, mut split, mut mode, mut wildcard, mut extra) = (None, None, None, None, None);
        for token in tokens {
            let Some((key, value)) = token.split_once('=').filter(|(_, v)| !v.contains('=')) else {
                return Err(err("key=value", format!("{token:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                return Err(err("a non-empty value", format!("{key}=")));
            }
            let slot = match key {
                "root" => &mut root,
                "extra" => &mut extra,
                "split" => &mut split,
                "mode" => &mut mode,
                "wildcard" => &mut wildcard,
                _ => return Err(err("a key among root, extra, split, mode, wildcard", format!("{key:?}"))),
            };
            if slot.is_some() {
                return Err(err("each key at most once", format!("{key:?} twice")));
            }
            *slot = Some(match key {
                "root" | "extra" => value.to_owned(),
                _ => value.to_uppercase(),
            });
        }
        let root = root.ok_or_else(|| err("a root=<folder> entry", "none".into()))?;
        if let Some(w) = wildcard.as_ref().filter(|w| *w != "NONE" && *w != "SEPARATE_CHANNELS") {
            return Err(err("wildcard NONE or SEPARATE_CHANNELS", format!("{w:?}")));
        }
        Ok(Self { kind, root: PathBuf::from(root), split, mode, wildcard, extra })
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind.name())?;
        for (k, v) in [("split", &self.split), ("mode", &self.mode), ("wildcard", &self.wildcard)] {
            if let Some(v) = v {
                write!(f, ":{k}={v}")?;
            }
        }
        write!(f, ":root={}", self.root.display())?;
        if let Some(e) = &self.extra {
            write!(f, ":extra={e}")?;
        }
        Ok(())
    }
}

impl DatasetSpec {
    /// `wildcard=SEPARATE_CHANNELS`: every channel is its own sample (Bag of Channels).
    pub fn separate_channels(&self) -> bool {
        self.wildcard.as_deref() == Some("SEPARATE_CHANNELS")
    }

    /// Builds the dataset. Defaults as upstream: HPAone split `ALL`, HPAFoV split `TRAIN`,
    /// HPA mode: both targets; CHAMMI needs a split and takes no mode.
    pub fn open(&self) -> Result<Dataset, DataError> {
        let mode = self.mode.as_deref().map(HpaMode::from_str).transpose()?.unwrap_or_default();
        match self.kind {
            DatasetKind::HpaOne => {
                let split = self.split.as_deref().map(HpaOneSplit::from_str).transpose()?.unwrap_or_default();
                Dataset::hpa_single_cell(&self.root, split, mode)
            }
            DatasetKind::HpaFov => {
                let split = self.split.as_deref().map(HpaFovSplit::from_str).transpose()?.unwrap_or_default();
                Dataset::hpa_fov(&self.root, split, mode)
            }
            DatasetKind::Chammi(subset) => {
                if let Some(m) = &self.mode {
                    return Err(DataError::invalid("CHAMMI mode", "no mode", m.clone()));
                }
                let split = self
                    .split
                    .as_deref()
                    .ok_or_else(|| DataError::invalid("CHAMMI split", "split=TRAIN or TASK_ONE … TASK_FOUR", "none"))?;
                Dataset::chammi(&self.root, subset, split.parse::<ChammiSplit>()?, ChammiMetadata::Combined)
            }
        }
    }
}

/// What [`open_dataset`] opened.
#[derive(Debug)]
pub struct OpenedDataset {
    pub dataset: Dataset,
    /// The string asked for `wildcard=SEPARATE_CHANNELS` (Bag of Channels).
    pub separate_channels: bool,
}

impl OpenedDataset {
    /// The dataset as a sample source: wrapped in [`BagOfChannels`] if
    /// [`separate_channels`](Self::separate_channels).
    pub fn into_source(self) -> Result<Box<dyn SampleSource>, DataError> {
        Ok(if self.separate_channels { Box::new(BagOfChannels::new(self.dataset)?) } else { Box::new(self.dataset) })
    }
}

/// Opens a dataset from a dinov2 dataset string (`CHAMMI_CP:split=TASK_ONE:root=/data/chammi`),
/// a CSV manifest path (default [`ManifestOptions`]) or a folder (default [`FolderOptions`]).
/// A string is a dataset string when the part before its first `:` is a known dataset name.
pub fn open_dataset(spec: &str) -> Result<OpenedDataset, DataError> {
    let head = spec.split(':').next().unwrap_or_default();
    if DatasetKind::from_name(head).is_some() {
        let parsed: DatasetSpec = spec.parse()?;
        return Ok(OpenedDataset { dataset: parsed.open()?, separate_channels: parsed.separate_channels() });
    }
    let path = PathBuf::from(spec);
    let dataset = if path.is_dir() {
        Dataset::from_folder(&path, &FolderOptions::default())?
    } else {
        Dataset::from_manifest(&path, &ManifestOptions::default())?
    };
    Ok(OpenedDataset { dataset, separate_channels: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_values_and_errors() {
        let s: DatasetSpec = "hpaone:root=/d:split=all:extra=e".parse().unwrap();
        assert_eq!((s.kind, s.split.as_deref(), s.extra.as_deref()), (DatasetKind::HpaOne, Some("ALL"), Some("e")));
        assert!(!s.separate_channels());
        assert_eq!(s.to_string(), "HPAone:split=ALL:root=/d:extra=e");
        for bad in [
            "HPAFoV",
            "Foo:root=/d",
            "HPAFoV:root=/d:split",
            "HPAFoV:root=/d:split=a=b",
            "HPAFoV:root=/d:split=",
            "HPAFoV:root=/d:root=/e",
            "HPAFoV:root=/d:wildcard=ALL",
            "CHAMMI_CP:split=TASK_ONE:root=C:/x",
        ] {
            assert!(matches!(bad.parse::<DatasetSpec>(), Err(DataError::DatasetSpec { .. })), "{bad}");
        }
    }
}
