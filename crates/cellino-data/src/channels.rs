//! Typed channel references: select channels by index or by name.

use std::fmt;
use std::str::FromStr;

use crate::{DataError, MultiChannelImage};

/// One channel of an image, by position or by name.
///
/// Names are compared ignoring ASCII case and surrounding white space. Parsing a string gives
/// [`Index`](Self::Index) for a plain non-negative integer and [`Name`](Self::Name) otherwise.
///
/// ```
/// use cellino_data::ChannelRef;
/// assert_eq!("2".parse::<ChannelRef>().unwrap(), ChannelRef::Index(2));
/// assert_eq!("protein".parse::<ChannelRef>().unwrap(), ChannelRef::Name("protein".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChannelRef {
    Index(usize),
    Name(String),
}

impl FromStr for ChannelRef {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Ok(match t.parse::<usize>() {
            Ok(i) if !t.starts_with('+') => Self::Index(i),
            _ => Self::Name(t.to_owned()),
        })
    }
}

impl From<usize> for ChannelRef {
    fn from(i: usize) -> Self {
        Self::Index(i)
    }
}

impl From<&str> for ChannelRef {
    fn from(s: &str) -> Self {
        Self::Name(s.to_owned())
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "#{i}"),
            Self::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// Which channel of its source image a single-channel (Bag-of-Channels) sample is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelId {
    /// Position in the source image (after any channel selection or adaptation).
    pub index: usize,
    /// Its name, where the image has one.
    pub name: Option<String>,
}

/// Whether two channel names are the same (ASCII case and outer white space ignored).
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

pub(crate) fn describe_names(names: &[Option<String>]) -> String {
    let list: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| match n {
            Some(n) => format!("{n:?}"),
            None => format!("#{i} (unnamed)"),
        })
        .collect();
    format!("[{}]", list.join(", "))
}

/// The index of `channel` among `names` (one entry per channel of the image).
pub fn resolve_channel(names: &[Option<String>], channel: &ChannelRef) -> Result<usize, DataError> {
    match channel {
        ChannelRef::Index(i) if *i < names.len() => Ok(*i),
        ChannelRef::Index(i) => {
            Err(DataError::OutOfRange { path: Default::default(), what: "channel", index: *i, size: names.len() })
        }
        ChannelRef::Name(n) => {
            names.iter().position(|m| m.as_deref().is_some_and(|m| same_name(m, n))).ok_or_else(|| {
                DataError::UnknownChannel {
                    path: Default::default(),
                    available: describe_names(names),
                    found: n.clone(),
                }
            })
        }
    }
}

impl MultiChannelImage {
    /// The index of `channel` in this image (by index or by name).
    pub fn resolve_channel(&self, channel: &ChannelRef) -> Result<usize, DataError> {
        resolve_channel(&self.channel_names, channel)
    }

    /// A new image with the channels `refs`, in that order (repeats allowed), with their names.
    ///
    /// ```
    /// use cellino_data::{ChannelRef, MultiChannelImage, SampleType};
    /// let im = MultiChannelImage::new(vec![0.0, 1.0, 2.0], 3, 1, 1, SampleType::U8)?
    ///     .with_channel_names(["nucleus", "protein", "er"])?;
    /// let sel = im.select(&["ER".into(), ChannelRef::Index(0)])?;
    /// assert_eq!(sel.data, vec![2.0, 0.0]);
    /// assert!(im.select(&["actin".into()]).is_err());
    /// # Ok::<(), cellino_data::DataError>(())
    /// ```
    pub fn select(&self, refs: &[ChannelRef]) -> Result<MultiChannelImage, DataError> {
        let indices = refs.iter().map(|r| self.resolve_channel(r)).collect::<Result<Vec<_>, _>>()?;
        self.select_channels(&indices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_resolve() {
        assert_eq!(" 3 ".parse::<ChannelRef>().unwrap(), ChannelRef::Index(3));
        assert_eq!("+3".parse::<ChannelRef>().unwrap(), ChannelRef::Name("+3".into()));
        assert_eq!("-1".parse::<ChannelRef>().unwrap(), ChannelRef::Name("-1".into()));
        let names = vec![Some("DNA".to_string()), None, Some("Mito".to_string())];
        assert_eq!(resolve_channel(&names, &"dna".into()).unwrap(), 0);
        assert_eq!(resolve_channel(&names, &" MITO ".into()).unwrap(), 2);
        assert_eq!(resolve_channel(&names, &1.into()).unwrap(), 1);
        assert!(matches!(resolve_channel(&names, &3.into()), Err(DataError::OutOfRange { index: 3, size: 3, .. })));
        let err = resolve_channel(&names, &"actin".into()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"actin\"") && msg.contains("\"DNA\"") && msg.contains("#1 (unnamed)"), "{msg}");
    }
}
