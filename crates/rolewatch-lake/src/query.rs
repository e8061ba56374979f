//! SQL over the lake with DataFusion: tables `events` and `dead_letters`.
//!
//! `events` is read with its Hive partitions as columns, `date` (a `DATE`) and `hour` (an
//! `INT`), so `WHERE date = '2026-11-26' AND hour >= 9` skips whole folders. Bounds on `ts`
//! skip folders too (see `ts_pruning`), and prune row groups and pages through the Parquet
//! statistics the writer records. The engine gets
//! its own object store for the lake's location (DataFusion builds on object_store 0.13).
//!
//! Queries are read-only: [`query`] refuses DDL and DML (`COPY ... TO`, `INSERT INTO`) before
//! planning them, and the session's stores (the lake's, and the local file system's) refuse
//! every write ([`ReadOnlyStore`]), so evidence cannot be overwritten through a query.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store_datafusion::aws::AmazonS3Builder;
use object_store_datafusion::local::LocalFileSystem;

use crate::location::{LakeLocation, configure_s3};
use crate::read_only::ReadOnlyStore;
use crate::ts_pruning::EventsTable;
use crate::{DEAD_LETTERS_PREFIX, EVENTS_PREFIX, Lake, LakeError, dead_letter_schema};

/// The tables a query sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryTable {
    /// `events`, partitioned by `date` and `hour`.
    Events,
    /// `dead_letters`.
    DeadLetters,
}

impl QueryTable {
    /// Both tables.
    pub const ALL: [Self; 2] = [Self::Events, Self::DeadLetters];

    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Events => EVENTS_PREFIX,
            Self::DeadLetters => DEAD_LETTERS_PREFIX,
        }
    }

    fn file_schema(self) -> SchemaRef {
        match self {
            Self::Events => rolewatch_event::schema::event_schema(),
            Self::DeadLetters => dead_letter_schema(),
        }
    }

    fn partition_columns(self) -> Vec<(String, DataType)> {
        match self {
            Self::Events => vec![("date".to_owned(), DataType::Date32), ("hour".to_owned(), DataType::Int32)],
            Self::DeadLetters => Vec::new(),
        }
    }
}

fn query_error(error: impl std::fmt::Display) -> LakeError {
    LakeError::Query(error.to_string())
}

/// A DataFusion session with the lake's tables registered, for callers that stream results. Its
/// object stores refuse writes, whatever the SQL.
pub async fn query_context(lake: &Lake) -> Result<SessionContext, LakeError> {
    let location = lake.location().ok_or_else(|| {
        LakeError::Query(
            "this lake was opened on a bare object store; open it by path or URL to query".to_owned(),
        )
    })?;
    let config = SessionConfig::new()
        .with_information_schema(true)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true);
    let context = SessionContext::new_with_config(config);
    // DataFusion's default store for `file://` writes anywhere on the local disk.
    let local = ObjectStoreUrl::local_filesystem();
    let read_only_local = ReadOnlyStore::new(Arc::new(LocalFileSystem::new()));
    context.runtime_env().register_object_store(local.as_ref(), Arc::new(read_only_local));
    let root = match location {
        LakeLocation::Local(path) => {
            let absolute = std::path::absolute(path).map_err(query_error)?;
            format!("file://{}", absolute.display())
        }
        LakeLocation::S3 { bucket, prefix, options } => {
            let builder = configure_s3!(AmazonS3Builder::new(), bucket, options);
            let store = builder.build().map_err(query_error)?;
            let url = ObjectStoreUrl::parse(format!("s3://{bucket}")).map_err(query_error)?;
            context
                .runtime_env()
                .register_object_store(url.as_ref(), Arc::new(ReadOnlyStore::new(Arc::new(store))));
            if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") }
        }
    };
    for table in QueryTable::ALL {
        register(&context, location, &root, table).await?;
    }
    Ok(context)
}

async fn register(
    context: &SessionContext,
    location: &LakeLocation,
    root: &str,
    table: QueryTable,
) -> Result<(), LakeError> {
    if let LakeLocation::Local(path) = location {
        // A local table folder appears with its first file; until then the table is empty.
        if !path.join(table.name()).is_dir() {
            let mut schema_fields: Vec<_> = table.file_schema().fields().iter().cloned().collect();
            for (name, data_type) in table.partition_columns() {
                schema_fields.push(Arc::new(arrow_schema::Field::new(name, data_type, true)));
            }
            let schema = Arc::new(arrow_schema::Schema::new(schema_fields));
            let empty = MemTable::try_new(schema, vec![vec![]]).map_err(query_error)?;
            context.register_table(table.name(), Arc::new(empty)).map_err(query_error)?;
            return Ok(());
        }
    }
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(table.partition_columns());
    let url = ListingTableUrl::parse(format!("{root}/{}/", table.name())).map_err(query_error)?;
    let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(table.file_schema());
    let listing = ListingTable::try_new(config).map_err(query_error)?;
    let provider: Arc<dyn TableProvider> = match table {
        QueryTable::Events => Arc::new(EventsTable::new(listing)),
        QueryTable::DeadLetters => Arc::new(listing),
    };
    context.register_table(table.name(), provider).map_err(query_error)?;
    Ok(())
}

/// Runs one SQL statement over the lake and returns its result. Only reads: a statement that
/// would define or change anything (DDL, DML, `COPY ... TO`) is an error.
pub async fn query(lake: &Lake, sql: &str) -> Result<Vec<RecordBatch>, LakeError> {
    let context = query_context(lake).await?;
    // A query reads: no DDL, no DML (`COPY ... TO` and `INSERT INTO` included).
    let read_only = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false);
    let frame = context.sql_with_options(sql, read_only).await.map_err(query_error)?;
    frame.collect().await.map_err(query_error)
}
