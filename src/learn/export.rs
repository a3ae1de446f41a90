//! Datasets as Parquet, for fleet-scale training: collect on many hosts,
//! merge and filter with Polars or Spark, train, ship the model.
//!
//! `scx_mlsched export DATASET --parquet OUT` writes one row per decision:
//! the features (Int64, schema order), `label` (Boolean), and the columns
//! `schema`, `workload`, `kernel` and `host`, so that nothing is lost when
//! files from many hosts are concatenated; a serving dataset (`run
//! --record`) adds its `point`, `src_cpu` and `dst_cpu` columns.  The dataset's own metadata
//! (`# key: value` lines of the CSV) goes into Parquet key-value metadata
//! as `scx_mlsched.KEY`.  `read_parquet` (used by `dataset::read`, so by
//! `train`) reads features by name, ignores extra columns, and refuses any
//! row whose schema hash is not this build's, naming the file and row.
//!
//! arrow-rs and parquet are behind the `parquet` cargo feature (they double
//! the build time); without it both directions say how to enable it.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[cfg(feature = "parquet")]
use crate::learn::dataset;
#[cfg(not(feature = "parquet"))]
use crate::learn::dataset::Dataset;

#[derive(Debug, Clone, Args)]
pub struct ExportOpts {
    /// The dataset to convert (CSV, as `collect` writes it).
    pub dataset: PathBuf,

    /// Write it as Parquet to this file.
    #[arg(long, value_name = "OUT")]
    pub parquet: PathBuf,
}

/// Columns that describe where a row comes from, beside the features.
#[cfg(feature = "parquet")]
pub const SOURCE_COLUMNS: [&str; 4] = ["schema", "workload", "kernel", "host"];
/// Prefix of the dataset's metadata keys in Parquet key-value metadata.
#[cfg(feature = "parquet")]
pub const META_PREFIX: &str = "scx_mlsched.";

#[cfg(not(feature = "parquet"))]
const NO_PARQUET: &str =
    "this scx_mlsched was built without Parquet support: build it with `--features parquet`";

#[cfg(not(feature = "parquet"))]
pub fn run(_o: &ExportOpts) -> Result<()> {
    anyhow::bail!("{NO_PARQUET}")
}

#[cfg(not(feature = "parquet"))]
pub fn read_parquet(path: &std::path::Path) -> Result<Dataset> {
    anyhow::bail!("{}: {NO_PARQUET}", path.display())
}

#[cfg(feature = "parquet")]
pub fn run(o: &ExportOpts) -> Result<()> {
    let ds = dataset::read(&o.dataset)?;
    write_parquet(&ds, &o.parquet)?;
    println!(
        "{}: {} rows ({} positive) written to {}",
        o.dataset.display(),
        ds.len(),
        ds.positives(),
        o.parquet.display()
    );
    Ok(())
}

#[cfg(all(test, feature = "parquet"))]
use imp::write_parquet_with;
#[cfg(feature = "parquet")]
pub use imp::{read_parquet, write_parquet};

#[cfg(feature = "parquet")]
mod imp {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs::File;
    use std::path::Path;
    use std::sync::Arc;

    use anyhow::{bail, Context, Result};
    use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;

    use super::{META_PREFIX, SOURCE_COLUMNS};
    use crate::learn::dataset::{Dataset, Outcome, RowCtx, CONTEXT, LABEL, MAX_ABS_VALUE, OUTCOME};
    use crate::learn::features::{NR_FEATURES, SCHEMA};

    pub fn write_parquet(ds: &Dataset, out: &Path) -> Result<()> {
        write_parquet_with(ds, out, Compression::SNAPPY)
    }

    /// `write_parquet` with another compression (the tests write what
    /// fleet tools write: Polars zstd, Spark snappy).
    pub fn write_parquet_with(ds: &Dataset, out: &Path, compression: Compression) -> Result<()> {
        let mut fields: Vec<Field> = SCHEMA
            .names()
            .map(|n| Field::new(n, DataType::Int64, false))
            .collect();
        fields.push(Field::new(LABEL, DataType::Boolean, false));
        fields.extend(
            SOURCE_COLUMNS
                .iter()
                .map(|c| Field::new(*c, DataType::Utf8, false)),
        );
        // A serving dataset's context columns, as Int64.
        if !ds.ctx.is_empty() {
            fields.extend(
                CONTEXT
                    .iter()
                    .map(|c| Field::new(*c, DataType::Int64, false)),
            );
        }
        // A recording's outcome columns, as Int64 (flags 0 or 1).
        if !ds.out.is_empty() {
            fields.extend(
                OUTCOME
                    .iter()
                    .map(|c| Field::new(*c, DataType::Int64, false)),
            );
        }
        let schema = Arc::new(Schema::new(fields));

        let mut cols: Vec<ArrayRef> = (0..NR_FEATURES)
            .map(|i| Arc::new(Int64Array::from_iter_values(ds.x.iter().map(|v| v[i]))) as ArrayRef)
            .collect();
        cols.push(Arc::new(BooleanArray::from(ds.y.clone())));
        for c in SOURCE_COLUMNS {
            let v = ds.meta.get(c).map_or("", String::as_str);
            cols.push(Arc::new(StringArray::from_iter_values(
                std::iter::repeat_n(v, ds.len()),
            )));
        }
        if !ds.ctx.is_empty() {
            let col = |f: fn(&RowCtx) -> i64| {
                Arc::new(Int64Array::from_iter_values(ds.ctx.iter().map(f))) as ArrayRef
            };
            cols.extend([col(|c| c.point), col(|c| c.src), col(|c| c.dst)]);
        }
        if !ds.out.is_empty() {
            let rows: Vec<_> = ds.out.iter().map(Outcome::to_row).collect();
            cols.extend((0..OUTCOME.len()).map(|i| {
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r[i]))) as ArrayRef
            }));
        }
        let batch = RecordBatch::try_new(schema.clone(), cols)?;
        let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
        // The dataset's metadata as the file's own key-value metadata, which
        // every Parquet reader sees (not only in the embedded Arrow schema).
        let kv: Vec<KeyValue> = ds
            .meta
            .iter()
            .map(|(k, v)| KeyValue::new(format!("{META_PREFIX}{k}"), v.clone()))
            .collect();
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_key_value_metadata(Some(kv))
            .build();
        let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
        w.write(&batch)?;
        w.close()
            .with_context(|| format!("writing {}", out.display()))?;
        Ok(())
    }

    fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str, p: &str) -> Result<&'a T> {
        b.column_by_name(name)
            .with_context(|| format!("{p}: no column {name}"))?
            .as_any()
            .downcast_ref::<T>()
            .with_context(|| format!("{p}: column {name} has the wrong type"))
    }

    pub fn read_parquet(path: &Path) -> Result<Dataset> {
        let p = path.display().to_string();
        let file = File::open(path).with_context(|| format!("reading {p}"))?;
        // Types from the Parquet schema, not from an embedded Arrow schema:
        // Polars and Spark write strings as LargeUtf8 or Utf8View there.
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(
            file,
            ArrowReaderOptions::new().with_skip_arrow_metadata(true),
        )
        .with_context(|| format!("{p}: not a Parquet file"))?;
        let mut meta: BTreeMap<String, String> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .into_iter()
            .flatten()
            .filter_map(|kv| {
                let k = kv.key.strip_prefix(META_PREFIX)?;
                Some((k.to_string(), kv.value.clone().unwrap_or_default()))
            })
            .collect();
        let want = SCHEMA.hash_hex();
        let (mut x, mut y, mut ctx, mut out) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut sources: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for batch in builder.build()? {
            let b = batch.with_context(|| format!("{p}: unreadable row group"))?;
            let feats: Vec<&Int64Array> = SCHEMA
                .names()
                .map(|n| column::<Int64Array>(&b, n, &p))
                .collect::<Result<_>>()?;
            let label = column::<BooleanArray>(&b, LABEL, &p)?;
            let src: Vec<&StringArray> = SOURCE_COLUMNS
                .iter()
                .map(|c| column::<StringArray>(&b, c, &p))
                .collect::<Result<_>>()?;
            // Context columns: all three, or none (a collected dataset).
            let extra: Vec<&Int64Array> = if b.column_by_name(CONTEXT[0]).is_some() {
                CONTEXT
                    .iter()
                    .map(|c| column::<Int64Array>(&b, c, &p))
                    .collect::<Result<_>>()?
            } else {
                Vec::new()
            };
            // Outcome columns: all of them, or none (no outcomes recorded).
            let outcome: Vec<&Int64Array> = if b.column_by_name(OUTCOME[0]).is_some() {
                OUTCOME
                    .iter()
                    .map(|c| column::<Int64Array>(&b, c, &p))
                    .collect::<Result<_>>()?
            } else {
                Vec::new()
            };
            for r in 0..b.num_rows() {
                let row = x.len() + 1;
                if src[0].value(r) != want {
                    bail!(
                        "{p}: row {row}: feature schema {} differs from this build's {want} \
                         (bpf/features.def changed); collect the data again",
                        src[0].value(r)
                    );
                }
                let mut v = [0i64; NR_FEATURES];
                for (i, f) in feats.iter().enumerate() {
                    if f.is_null(r) || label.is_null(r) {
                        bail!("{p}: row {row}: missing value");
                    }
                    v[i] = f.value(r);
                    if v[i].unsigned_abs() > MAX_ABS_VALUE {
                        let name = SCHEMA.names().nth(i).unwrap_or("?");
                        bail!("{p}: row {row}: {name} = {} is outside ±2^53", v[i]);
                    }
                }
                x.push(v);
                y.push(label.value(r));
                if let [point, src, dst] = extra[..] {
                    ctx.push(RowCtx {
                        point: point.value(r),
                        src: src.value(r),
                        dst: dst.value(r),
                    });
                }
                if !outcome.is_empty() {
                    let mut v = [0i64; OUTCOME.len()];
                    for (i, a) in outcome.iter().enumerate() {
                        if a.is_null(r) {
                            bail!("{p}: row {row}: missing {}", OUTCOME[i]);
                        }
                        v[i] = a.value(r);
                    }
                    out.push(Outcome::from_row(&v).with_context(|| format!("{p}: row {row}"))?);
                }
                for (c, a) in SOURCE_COLUMNS.iter().zip(&src) {
                    sources.entry(c).or_default().insert(a.value(r).to_string());
                }
            }
        }
        if y.is_empty() {
            bail!("{p}: no rows");
        }
        // The columns say where rows come from, even in a merged file whose
        // key-value metadata is one input's: distinct values are joined
        // (e.g. two workloads).
        for (c, vals) in sources {
            meta.insert(
                c.to_string(),
                vals.into_iter().collect::<Vec<_>>().join("+"),
            );
        }
        Ok(Dataset {
            path: path.to_path_buf(),
            meta,
            x,
            y,
            ctx,
            out,
        })
    }
}

#[cfg(all(test, feature = "parquet"))]
mod tests {
    use super::*;
    use crate::learn::features::{NR_FEATURES, SCHEMA};
    use std::path::Path;
    use std::sync::Arc;

    /// CSV -> Parquet -> the rows training reads are the same, metadata too.
    #[test]
    fn csv_parquet_round_trip_gives_identical_rows() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["kcompile-fio", "hackbench-mix"] {
            let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("datasets/{name}.csv"));
            let a = dataset::read(&csv).unwrap();
            let pq = dir.path().join(format!("{name}.parquet"));
            write_parquet(&a, &pq).unwrap();
            let b = dataset::read(&pq).unwrap();
            assert_eq!(a.x, b.x, "{name}: features");
            assert_eq!(a.y, b.y, "{name}: labels");
            assert_eq!(a.ctx, b.ctx, "{name}: context (decision point, CPU pair)");
            assert_eq!(
                b.ctx.len(),
                b.len(),
                "{name}: a collected dataset has its context"
            );
            for (k, v) in &a.meta {
                assert_eq!(b.meta.get(k), Some(v), "{name}: meta {k}");
            }
            assert_eq!(b.meta["schema"], SCHEMA.hash_hex());
        }
    }

    /// The compressions fleet tools write by default read back: zstd
    /// (Polars), snappy (Spark, DuckDB), and none.
    #[test]
    fn files_compressed_as_fleet_tools_write_them_are_read() {
        use parquet::basic::{Compression, ZstdLevel};
        let dir = tempfile::tempdir().unwrap();
        let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/hackbench-mix.csv");
        let a = dataset::read(&csv).unwrap();
        for (name, c) in [
            ("zstd", Compression::ZSTD(ZstdLevel::default())),
            ("snappy", Compression::SNAPPY),
            ("none", Compression::UNCOMPRESSED),
        ] {
            let pq = dir.path().join(format!("{name}.parquet"));
            write_parquet_with(&a, &pq, c).unwrap();
            let b = dataset::read(&pq).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!((a.x.len(), &a.y), (b.x.len(), &b.y), "{name}");
            assert_eq!(a.x, b.x, "{name}");
        }
    }

    /// A serving dataset keeps its context columns through Parquet.
    #[test]
    fn serving_dataset_parquet_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("serving.csv");
        let mut w =
            dataset::Writer::create_with_context(&csv, &[("workload", "unit".into())]).unwrap();
        for r in 0..5i64 {
            let ctx = dataset::RowCtx {
                point: 2 + r % 2,
                src: r,
                dst: 7 - r,
            };
            w.write_ctx(&[r; NR_FEATURES], r % 3 == 0, ctx).unwrap();
        }
        w.finish(&[]).unwrap();
        let a = dataset::read(&csv).unwrap();
        let pq = dir.path().join("serving.parquet");
        write_parquet(&a, &pq).unwrap();
        let b = dataset::read(&pq).unwrap();
        assert_eq!(a.x, b.x);
        assert_eq!(a.y, b.y);
        assert_eq!(a.ctx.len(), 5);
        assert_eq!(a.ctx, b.ctx);
    }

    /// A recording's outcome columns come through Parquet as they were.
    #[test]
    fn outcome_dataset_parquet_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("outcome.csv");
        let mut w =
            dataset::Writer::create_with_outcome(&csv, &[("workload", "unit".into())]).unwrap();
        for r in 0..7i64 {
            let ctx = dataset::RowCtx {
                point: 5 + r % 4,
                src: r,
                dst: 7 - r,
            };
            let o = dataset::tests::outcome_sample(r);
            w.write_outcome(&[r; NR_FEATURES], r % 3 == 0, ctx, &o)
                .unwrap();
        }
        w.finish(&[]).unwrap();
        let a = dataset::read(&csv).unwrap();
        let pq = dir.path().join("outcome.parquet");
        write_parquet(&a, &pq).unwrap();
        let b = dataset::read(&pq).unwrap();
        assert_eq!((a.x.len(), a.out.len()), (7, 7));
        assert_eq!(a.ctx, b.ctx);
        assert_eq!(a.out, b.out);
        assert_ne!(a.out[0], a.out[1]);
    }

    /// What a fleet tool writes: concatenated hosts, no scx_mlsched key-value
    /// metadata, columns reordered, an extra column, large strings.  And a
    /// row of another schema.
    #[test]
    fn merged_files_are_read_by_column_and_foreign_schemas_refused() {
        use arrow_array::{ArrayRef, BooleanArray, Int64Array, LargeStringArray, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        let write = |path: &Path, schemas: &[&str]| {
            let n = schemas.len();
            let mut fields = vec![Field::new("extra", DataType::Int64, false)];
            let mut cols: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![9; n]))];
            for c in SOURCE_COLUMNS.iter().rev() {
                // As Polars writes strings: LargeUtf8 in the embedded schema.
                fields.push(Field::new(*c, DataType::LargeUtf8, false));
                let v: Vec<String> = match *c {
                    "schema" => schemas.iter().map(|s| s.to_string()).collect(),
                    "host" => (0..n).map(|i| format!("h{}", i % 2)).collect(),
                    other => vec![other.to_string(); n],
                };
                cols.push(Arc::new(LargeStringArray::from(v)));
            }
            fields.push(Field::new("label", DataType::Boolean, false));
            cols.push(Arc::new(BooleanArray::from(
                (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            )));
            for (i, name) in SCHEMA
                .names()
                .enumerate()
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                fields.push(Field::new(name, DataType::Int64, false));
                cols.push(Arc::new(Int64Array::from(
                    (0..n as i64)
                        .map(|r| r * 100 + i as i64)
                        .collect::<Vec<_>>(),
                )));
            }
            let schema = Arc::new(Schema::new(fields));
            let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
            let mut w = parquet::arrow::ArrowWriter::try_new(
                std::fs::File::create(path).unwrap(),
                schema,
                None,
            )
            .unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
        };
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("fleet.parquet");
        let h = SCHEMA.hash_hex();
        write(&good, &[&h, &h, &h]);
        let ds = dataset::read(&good).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.x[2][0], 200);
        assert_eq!(ds.x[1][NR_FEATURES - 1], 100 + NR_FEATURES as i64 - 1);
        assert_eq!(ds.y, vec![true, false, true]);
        assert_eq!(ds.meta["host"], "h0+h1");
        let bad = dir.path().join("mixed.parquet");
        write(&bad, &[&h, "0000000000000000"]);
        let err = format!("{:#}", dataset::read(&bad).unwrap_err());
        assert!(
            err.contains("row 2") && err.contains("0000000000000000"),
            "{err}"
        );
    }
}
