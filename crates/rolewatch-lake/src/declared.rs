//! Declared chunks: the range a chunk will cover, written before its files.
//!
//! A crash between a chunk's files and its manifest leaves files that no manifest lists. The
//! restart commits them only if it cuts the stream at the same records again (same names, same
//! bytes: a replay). A reader that cuts by wall clock (a Kafka partition flushed by age) cuts
//! elsewhere, and the leftover would stay beside the committed copy of its records, counted
//! twice by anyone who reads the folders. So such a writer first declares the chunk's range at
//! `_chunks/<stream>/<start:020>.json` (create-only, like everything in the lake), and a
//! restart that finds a declaration starting where its stream resumes cuts exactly there.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;

use crate::manifest::CoveredRange;
use crate::naming::StreamId;
use crate::store::{CreateOutcome, put_create};
use crate::{Lake, LakeError};

/// The prefix of chunk declarations in the lake.
pub const CHUNKS_PREFIX: &str = "_chunks";

fn declaration_key(stream: &StreamId, start: u64) -> String {
    format!("{CHUNKS_PREFIX}/{stream}/{start:020}.json")
}

fn parse(key: &str, bytes: &[u8]) -> Result<CoveredRange, LakeError> {
    serde_json::from_slice(bytes).map_err(|error| LakeError::Manifest {
        key: key.to_owned(),
        reason: format!("not a chunk declaration: {error}"),
    })
}

impl Lake {
    /// Declares that the next chunk of `stream` covers `range`, before any of its files is
    /// written. Returns the range declared for that start: `range` itself, or the range an
    /// earlier attempt declared (a writer that crashed, or a zombie member of the group), which
    /// the caller should cut at instead if it can.
    pub async fn declare_chunk(
        &self,
        stream: &StreamId,
        range: &CoveredRange,
    ) -> Result<CoveredRange, LakeError> {
        let key = declaration_key(stream, range.start());
        let bytes = serde_json::to_vec(range).map_err(|error| LakeError::InvalidCommit {
            reason: format!("cannot encode {range:?}: {error}"),
        })?;
        match put_create(self.store().as_ref(), &self.retry, &key, &Bytes::from(bytes)).await? {
            CreateOutcome::Created | CreateOutcome::Identical => Ok(range.clone()),
            CreateOutcome::Different { stored } => parse(&key, &stored),
        }
    }

    /// The declared chunk of `stream` that starts first at or after `from` (where reading
    /// resumes: [`CoveredRange::resume_at`] of the stream's durable position, 0 when nothing of
    /// it is durable), if any. A declaration there is a chunk that was not committed: the one a
    /// restart should cut the same way.
    pub async fn next_declared_chunk(
        &self,
        stream: &StreamId,
        from: u64,
    ) -> Result<Option<CoveredRange>, LakeError> {
        let prefix = ObjectPath::from(format!("{CHUNKS_PREFIX}/{stream}"));
        // Keys sort by their zero-padded start; the listing starts after the key of `from - 1`.
        let listed: Vec<_> = match from.checked_sub(1) {
            Some(before) => {
                let offset = ObjectPath::from(declaration_key(stream, before));
                self.store().list_with_offset(Some(&prefix), &offset).try_collect().await
            }
            None => self.store().list(Some(&prefix)).try_collect().await,
        }
        .map_err(|source| LakeError::Store { key: prefix.to_string(), source })?;
        let Some(first) = listed
            .into_iter()
            .filter(|meta| meta.location.as_ref().ends_with(".json"))
            .min_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()))
        else {
            return Ok(None);
        };
        let key = first.location.to_string();
        let bytes = crate::store::get_with_retry(self.store().as_ref(), &self.retry, &first.location)
            .await
            .map_err(|source| LakeError::Store { key: key.clone(), source })?;
        let range = parse(&key, &bytes)?;
        Ok((range.start() >= from).then_some(range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(first_offset: i64, last_offset: i64) -> CoveredRange {
        CoveredRange::Kafka { topic: "audit".to_owned(), partition: 2, first_offset, last_offset }
    }

    #[tokio::test]
    async fn the_first_declaration_of_a_start_stands() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        let stream = StreamId::for_kafka("audit", 2);
        assert_eq!(lake.declare_chunk(&stream, &kafka(0, 99)).await.unwrap(), kafka(0, 99));
        assert_eq!(lake.declare_chunk(&stream, &kafka(0, 99)).await.unwrap(), kafka(0, 99), "a replay");
        assert_eq!(lake.declare_chunk(&stream, &kafka(0, 40)).await.unwrap(), kafka(0, 99), "not replaced");
        let stored =
            std::fs::read(dir.path().join("_chunks/kafka-audit-00002/00000000000000000000.json")).unwrap();
        assert_eq!(parse("k", &stored).unwrap(), kafka(0, 99));
    }

    #[tokio::test]
    async fn the_next_declaration_is_the_first_after_the_durable_position() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open_local(dir.path()).unwrap();
        let stream = StreamId::for_kafka("audit", 2);
        let other = StreamId::for_kafka("audit", 20);
        assert_eq!(lake.next_declared_chunk(&stream, 0).await.unwrap(), None);
        for range in [kafka(0, 99), kafka(100, 149), kafka(152, 200)] {
            lake.declare_chunk(&stream, &range).await.unwrap();
        }
        lake.declare_chunk(&other, &kafka(150, 151)).await.unwrap();
        assert_eq!(lake.next_declared_chunk(&stream, 0).await.unwrap(), Some(kafka(0, 99)));
        assert_eq!(lake.next_declared_chunk(&stream, 100).await.unwrap(), Some(kafka(100, 149)));
        // Offsets may have gaps (transaction markers, compaction): the next start, not +1.
        assert_eq!(lake.next_declared_chunk(&stream, 150).await.unwrap(), Some(kafka(152, 200)));
        assert_eq!(lake.next_declared_chunk(&stream, 201).await.unwrap(), None);
        assert_eq!(lake.next_declared_chunk(&other, 150).await.unwrap(), Some(kafka(150, 151)));
    }
}
