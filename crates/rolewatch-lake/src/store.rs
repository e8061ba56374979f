//! Create-only puts and Parquet encoding.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};

use crate::LakeError;

/// zstd level 3: measured on this class of machine as the sweet spot (levels >= 6 cost 2.5x the
/// time for 7 % less size; see shared PERFORMANCE.md).
const ZSTD_LEVEL: i32 = 3;

/// What happened to a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    /// The object was created.
    Created,
    /// An identical object was already there: a replay, counted as success.
    Replayed,
}

/// A file the lake holds after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The object key, relative to the lake root.
    pub key: String,
    /// Rows in the file.
    pub rows: usize,
    /// Size in bytes.
    pub bytes: usize,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Whether it was created now or found identical.
    pub status: PutStatus,
}

/// Encodes a batch as one zstd Parquet file with page statistics, dictionary encoding and the
/// given key-value metadata. The output depends only on the batch and the metadata.
pub fn encode_parquet(
    batch: &arrow_array::RecordBatch,
    metadata: Vec<(String, String)>,
) -> Result<Bytes, LakeError> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(
            metadata.into_iter().map(|(key, value)| KeyValue::new(key, value)).collect(),
        ))
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// Puts `bytes` at `key` only if nothing is there. If something is, compares content: identical
/// is a replay, different is an integrity error. Never overwrites.
pub(crate) async fn put_once(
    store: &dyn ObjectStore,
    key: &str,
    bytes: Bytes,
    rows: usize,
) -> Result<WrittenFile, LakeError> {
    let location = ObjectPath::from(key);
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len();
    let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
    let status = match store.put_opts(&location, PutPayload::from_bytes(bytes), options).await {
        Ok(_) => PutStatus::Created,
        Err(object_store::Error::AlreadyExists { .. }) => {
            let stored = store
                .get(&location)
                .await
                .map_err(|source| LakeError::Store { key: key.to_owned(), source })?
                .bytes()
                .await
                .map_err(|source| LakeError::Store { key: key.to_owned(), source })?;
            let stored_sha256 = hex::encode(Sha256::digest(&stored));
            if stored_sha256 != sha256 {
                return Err(LakeError::Integrity { key: key.to_owned(), stored_sha256, new_sha256: sha256 });
            }
            PutStatus::Replayed
        }
        Err(source) => return Err(LakeError::Store { key: key.to_owned(), source }),
    };
    Ok(WrittenFile { key: key.to_owned(), rows, bytes: size, sha256, status })
}

/// Reads every `.parquet` object under `prefix`, in key order.
pub(crate) async fn read_all_batches(
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<Vec<arrow_array::RecordBatch>, LakeError> {
    let prefix_path = ObjectPath::from(prefix);
    let mut objects: Vec<_> = store.list(Some(&prefix_path)).try_collect().await?;
    objects.retain(|meta| meta.location.as_ref().ends_with(".parquet"));
    objects.sort_by(|left, right| left.location.cmp(&right.location));
    let mut batches = Vec::new();
    for meta in objects {
        let bytes = store.get(&meta.location).await?.bytes().await?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        for batch in reader {
            batches.push(batch?);
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn create_only_put_recognizes_replays_and_refuses_overwrites() {
        let store = Arc::new(InMemory::new());
        let first =
            put_once(store.as_ref(), "events/x.parquet", Bytes::from_static(b"abc"), 1).await.unwrap();
        assert_eq!(first.status, PutStatus::Created);
        let replay =
            put_once(store.as_ref(), "events/x.parquet", Bytes::from_static(b"abc"), 1).await.unwrap();
        assert_eq!(replay.status, PutStatus::Replayed);
        let error =
            put_once(store.as_ref(), "events/x.parquet", Bytes::from_static(b"abd"), 1).await.unwrap_err();
        assert!(matches!(error, LakeError::Integrity { .. }), "{error}");
        let stored = store.get(&ObjectPath::from("events/x.parquet")).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored.as_ref(), b"abc", "the existing object must be untouched");
    }
}
