//! A CSV file read whole, with its header and the line of every row (for error messages).

use std::path::{Path, PathBuf};

use crate::DataError;

pub(crate) struct CsvTable {
    pub path: PathBuf,
    pub headers: Vec<String>,
    /// `(1-based line, fields)`; the header is line 1.
    pub rows: Vec<(u64, Vec<String>)>,
}

impl CsvTable {
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
        Self::parse(&bytes, path)
    }

    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, DataError> {
        // A UTF-8 byte-order mark (Excel) would otherwise be part of the first column name.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(bytes);
        let err = |e: csv::Error| {
            let line = e.position().map_or(0, |p| p.line());
            DataError::csv(path, line, format!("invalid CSV: {e}"))
        };
        let headers: Vec<String> = reader.headers().map_err(err)?.iter().map(str::to_owned).collect();
        if headers.is_empty() || headers.iter().all(String::is_empty) {
            return Err(DataError::csv(path, 1, "expected a header row, found an empty file"));
        }
        for (i, h) in headers.iter().enumerate() {
            if headers[..i].contains(h) {
                return Err(DataError::csv(path, 1, format!("duplicate column {h:?}")));
            }
        }
        let mut rows = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(err)?;
            let line = rec.position().map_or(0, |p| p.line());
            // Skip blank lines that the csv crate reports as a single empty field.
            if rec.len() == 1 && rec[0].is_empty() && headers.len() > 1 {
                continue;
            }
            rows.push((line, rec.iter().map(str::to_owned).collect()));
        }
        Ok(Self { path: path.to_path_buf(), headers, rows })
    }

    /// The index of column `name`, or an error listing the columns.
    pub fn column(&self, name: &str) -> Result<usize, DataError> {
        self.find(name).ok_or_else(|| {
            DataError::csv(&self.path, 1, format!("missing column {name:?}; the columns are {:?}", self.headers))
        })
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_errors() {
        let t = CsvTable::parse(b"\xEF\xBB\xBFa, b\n1,2\n\"x,y\", 4\n", Path::new("m.csv")).unwrap();
        assert_eq!(t.headers, ["a", "b"]);
        assert_eq!(t.rows, vec![(2, vec!["1".into(), "2".into()]), (3, vec!["x,y".into(), "4".into()])]);
        assert_eq!(t.column("b").unwrap(), 1);
        assert!(t.column("c").unwrap_err().to_string().contains("missing column \"c\""));
        let e = CsvTable::parse(b"a,b\n1,2\n3\n", Path::new("m.csv")).err().unwrap();
        assert!(matches!(e, DataError::Csv { line: 3, .. }), "{e}");
        assert!(CsvTable::parse(b"", Path::new("m.csv")).is_err());
        assert!(CsvTable::parse(b"a,a\n", Path::new("m.csv")).is_err());
        assert!(CsvTable::parse(b"a\n\xff\xfe\n", Path::new("m.csv")).is_err());
    }
}
