//! Labels: what a sample is annotated with, and the label lists of a dataset.

/// The annotation of one sample.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The dataset has no labels (self-supervised data).
    None,
    /// A class index into the dataset's class list.
    Class(usize),
    /// A multi-hot vector (0 or 1 per label of the dataset's label list).
    MultiHot(Vec<u8>),
    /// The dataset is labelled but this sample's label is unknown (HPA-FoV: a cell line outside
    /// the list, NaN upstream).
    Missing,
    /// Several annotations (HPA `mode` not set: localisation multi-hot and cell line).
    Tuple(Vec<Target>),
}

impl Target {
    /// The class index of a [`Class`](Self::Class) target.
    pub fn class(&self) -> Option<usize> {
        match self {
            Self::Class(c) => Some(*c),
            _ => None,
        }
    }

    /// The vector of a [`MultiHot`](Self::MultiHot) target.
    pub fn multi_hot(&self) -> Option<&[u8]> {
        match self {
            Self::MultiHot(v) => Some(v),
            _ => None,
        }
    }

    /// A multi-hot target with ones at `positives` among `n` labels (indices ≥ `n` are ignored).
    pub fn multi_hot_from(positives: impl IntoIterator<Item = usize>, n: usize) -> Self {
        let mut v = vec![0u8; n];
        for p in positives {
            if let Some(x) = v.get_mut(p) {
                *x = 1;
            }
        }
        Self::MultiHot(v)
    }
}

/// The label lists of a dataset: what its [`Target`]s index into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelSchema {
    /// No labels.
    None,
    /// One class per sample, from `classes`.
    SingleLabel { classes: Vec<String> },
    /// Any subset of `labels` per sample.
    MultiLabel { labels: Vec<String> },
    /// One entry per element of [`Target::Tuple`].
    Tuple(Vec<LabelSchema>),
}

impl LabelSchema {
    /// The class or label names (empty for [`None`](Self::None) and [`Tuple`](Self::Tuple)).
    pub fn names(&self) -> &[String] {
        match self {
            Self::SingleLabel { classes } => classes,
            Self::MultiLabel { labels } => labels,
            Self::None | Self::Tuple(_) => &[],
        }
    }

    pub(crate) fn single<S: AsRef<str>>(classes: &[S]) -> Self {
        Self::SingleLabel { classes: classes.iter().map(|s| s.as_ref().to_owned()).collect() }
    }

    pub(crate) fn multi<S: AsRef<str>>(labels: &[S]) -> Self {
        Self::MultiLabel { labels: labels.iter().map(|s| s.as_ref().to_owned()).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        assert_eq!(Target::Class(3).class(), Some(3));
        assert_eq!(Target::None.class(), None);
        let t = Target::multi_hot_from([0, 2, 9], 3);
        assert_eq!(t.multi_hot(), Some(&[1u8, 0, 1][..]));
        assert_eq!(LabelSchema::single(&["a", "b"]).names(), ["a", "b"]);
        assert!(LabelSchema::Tuple(vec![]).names().is_empty());
    }
}
