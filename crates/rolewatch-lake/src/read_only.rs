//! The object store queries see: the lake's, with every write refused.
//!
//! DataFusion writes through the session's object stores (`COPY ... TO`, `INSERT INTO` a
//! listing table), and its default store for `file://` is the whole local file system. A query
//! session over the lake registers its stores wrapped in [`ReadOnlyStore`], so no statement run
//! through it can create, overwrite, copy, rename or delete an object, whatever path it names.
//! `query` also refuses DDL and DML before planning them; this is the layer under that one,
//! for callers of `query_context` too.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store_datafusion::path::Path;
use object_store_datafusion::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// An object store whose reads and lists go to `inner` and whose writes fail with
/// `PermissionDenied`.
#[derive(Debug)]
pub(crate) struct ReadOnlyStore {
    inner: Arc<dyn ObjectStore>,
}

impl ReadOnlyStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }
}

impl fmt::Display for ReadOnlyStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ReadOnly({})", self.inner)
    }
}

/// The error of every write.
fn refused(path: &Path) -> object_store_datafusion::Error {
    object_store_datafusion::Error::PermissionDenied {
        path: path.to_string(),
        source: "queries over the lake are read-only: stored data is never written or removed".into(),
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for ReadOnlyStore {
    async fn put_opts(&self, location: &Path, _payload: PutPayload, _opts: PutOptions) -> Result<PutResult> {
        Err(refused(location))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(refused(location))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        locations.map(|location| Err(location.map_or_else(|error| error, |path| refused(&path)))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, _from: &Path, to: &Path, _options: CopyOptions) -> Result<()> {
        Err(refused(to))
    }

    async fn rename_opts(&self, from: &Path, _to: &Path, _options: RenameOptions) -> Result<()> {
        Err(refused(from))
    }
}

#[cfg(test)]
mod tests {
    use object_store_datafusion::ObjectStoreExt;
    use object_store_datafusion::memory::InMemory;

    use super::*;

    /// Reads and lists pass through; every kind of write is refused and changes nothing.
    #[tokio::test]
    async fn reads_pass_and_writes_are_refused() {
        let inner = Arc::new(InMemory::new());
        let key = Path::from("events/date=2026-11-26/hour=10/a.parquet");
        let create = || PutOptions::from(object_store_datafusion::PutMode::Create);
        inner.put_opts(&key, PutPayload::from_static(b"evidence"), create()).await.unwrap();
        let store = ReadOnlyStore::new(inner.clone());

        let read = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(&read[..], b"evidence");
        let listed: Vec<ObjectMeta> = store
            .list(Some(&Path::from("events")))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(listed.len(), 1);

        let other = Path::from("events/b.parquet");
        let denied = |result: Result<()>| {
            matches!(result, Err(object_store_datafusion::Error::PermissionDenied { .. }))
        };
        // An overwrite (the default put mode), and a create of a new object.
        let forged = store.put_opts(&key, PutPayload::from_static(b"forged"), PutOptions::default()).await;
        assert!(denied(forged.map(drop)));
        assert!(denied(
            store.put_opts(&other, PutPayload::from_static(b"planted"), create()).await.map(drop)
        ));
        // The call the lint forbids is the one whose refusal is tested here.
        #[allow(clippy::disallowed_methods)]
        let multipart = store.put_multipart_opts(&other, PutMultipartOptions::default()).await;
        assert!(denied(multipart.map(drop)));
        assert!(denied(store.delete(&key).await));
        assert!(denied(store.copy(&other, &key).await));
        assert!(denied(store.rename(&key, &other).await));
        assert_eq!(&inner.get(&key).await.unwrap().bytes().await.unwrap()[..], b"evidence");
        assert!(inner.head(&other).await.is_err(), "nothing was planted");
    }
}
