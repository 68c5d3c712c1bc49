//! The metadata table as Parquet, for pandas / polars / DuckDB users: one row group, plain
//! encoding, no compression (the table is small next to the features). `row_index` and
//! `manifest_line` are INT64; every other column is a UTF-8 string, as in the CSV copy.

use std::sync::Arc;

use parquet::basic::{ConvertedType, Repetition, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::error::{EvalError, Result};

/// Columns written as INT64 (their cells are row and line numbers).
const INTEGER_COLUMNS: [&str; 2] = ["row_index", "manifest_line"];

fn parquet_error(e: parquet::errors::ParquetError) -> EvalError {
    EvalError::Io { path: "metadata table (parquet)".into(), message: e.to_string() }
}

/// `header` and `rows` (every row as long as the header) as the bytes of a Parquet file.
pub(crate) fn table_parquet(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let is_integer = |name: &str| INTEGER_COLUMNS.contains(&name);
    let fields = header
        .iter()
        .map(|name| {
            let builder = if is_integer(name) {
                Type::primitive_type_builder(name, PhysicalType::INT64)
            } else {
                Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY).with_converted_type(ConvertedType::UTF8)
            };
            builder.with_repetition(Repetition::REQUIRED).build().map(Arc::new)
        })
        .collect::<parquet::errors::Result<Vec<_>>>()
        .map_err(parquet_error)?;
    let schema = Arc::new(Type::group_type_builder("schema").with_fields(fields).build().map_err(parquet_error)?);
    let props = Arc::new(
        WriterProperties::builder().set_created_by(format!("cellino-eval {}", env!("CARGO_PKG_VERSION"))).build(),
    );
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, props).map_err(parquet_error)?;
    let mut group = writer.next_row_group().map_err(parquet_error)?;
    let mut column = 0;
    while let Some(mut out) = group.next_column().map_err(parquet_error)? {
        let cells = rows.iter().map(|r| r[column].as_str());
        if is_integer(header[column]) {
            let values = cells
                .map(|c| c.parse::<i64>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| EvalError::Io { path: "metadata table (parquet)".into(), message: e.to_string() })?;
            out.typed::<Int64Type>().write_batch(&values, None, None).map_err(parquet_error)?;
        } else {
            let values: Vec<ByteArray> = cells.map(ByteArray::from).collect();
            out.typed::<ByteArrayType>().write_batch(&values, None, None).map_err(parquet_error)?;
        }
        out.close().map_err(parquet_error)?;
        column += 1;
    }
    group.close().map_err(parquet_error)?;
    writer.into_inner().map_err(parquet_error)
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    use super::*;

    #[test]
    fn round_trips_through_the_parquet_reader() {
        let header = ["row_index", "source_path", "manifest_line", "plate, well", "label", "label_name"];
        let rows = vec![vec!["0", "a/b.tif", "2", "P1, A01", "3", "nucleoli"], vec!["1", "ü/ñ.png", "3", "", "", ""]]
            .into_iter()
            .map(|r| r.into_iter().map(String::from).collect())
            .collect::<Vec<Vec<String>>>();
        let bytes = table_parquet(&header, &rows).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &bytes).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(file.path()).unwrap()).unwrap();
        let schema = reader.metadata().file_metadata().schema_descr();
        let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
        assert_eq!(names, header);
        let read: Vec<Vec<String>> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                row.unwrap()
                    .get_column_iter()
                    .map(|(_, field)| match field {
                        Field::Long(v) => v.to_string(),
                        Field::Str(s) => s.clone(),
                        other => panic!("unexpected cell {other:?}"),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(read, rows);
    }

    #[test]
    fn non_integer_line_numbers_are_an_error_not_a_panic() {
        let rows = vec![vec!["x".to_string()]];
        assert!(table_parquet(&["row_index"], &rows).is_err());
    }
}
