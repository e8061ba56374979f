//! Partition pruning from `ts`: a filter on the event time also skips `date=/hour=` folders.
//!
//! DataFusion prunes partitions only by filters on the partition columns. Analysts filter on
//! `ts`, so the `events` table wraps the listing table and, for each bound on `ts`, adds the
//! filter on `date` and `hour` that it implies (`ts >= 10:17` implies the hour partition is
//! 10 or later). The added filters only prune folders; the `ts` filter itself still runs.

use std::sync::Arc;

use arrow_schema::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::ListingTable;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, col, lit};
use datafusion::physical_plan::ExecutionPlan;

/// The `events` listing table, with `ts` bounds turned into partition filters.
#[derive(Debug)]
pub(crate) struct EventsTable {
    inner: Arc<ListingTable>,
}

impl EventsTable {
    pub(crate) fn new(inner: ListingTable) -> Self {
        Self { inner: Arc::new(inner) }
    }
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let mut all = filters.to_vec();
        all.extend(filters.iter().flat_map(implied_partition_filters));
        self.inner.scan(state, projection, &all, limit).await
    }
}

/// Which side of a bound on `ts` a filter states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// `ts >= t` or `ts > t`.
    Lower,
    /// `ts <= t` or `ts < t`.
    Upper,
}

/// The partition filters a filter on `ts` implies (none for other filters).
fn implied_partition_filters(filter: &Expr) -> Vec<Expr> {
    let bounds = match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match (is_ts(left), is_ts(right)) {
            (true, false) => bounds_of(*op, false)
                .into_iter()
                .filter_map(|bound| Some((bound, timestamp(right)?)))
                .collect(),
            (false, true) => {
                bounds_of(*op, true).into_iter().filter_map(|bound| Some((bound, timestamp(left)?))).collect()
            }
            _ => Vec::new(),
        },
        Expr::Between(Between { expr, negated: false, low, high }) if is_ts(expr) => {
            let mut bounds = Vec::new();
            bounds.extend(timestamp(low).map(|low| (Bound::Lower, low)));
            bounds.extend(timestamp(high).map(|high| (Bound::Upper, high)));
            bounds
        }
        _ => Vec::new(),
    };
    bounds.into_iter().filter_map(|(bound, at)| partition_filter(bound, at)).collect()
}

fn is_ts(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(column) if column.name == "ts")
}

/// The bounds `ts <op> literal` states; `swapped` when written `literal <op> ts`.
fn bounds_of(op: Operator, swapped: bool) -> Vec<Bound> {
    let (lower, upper) = if swapped { (Bound::Upper, Bound::Lower) } else { (Bound::Lower, Bound::Upper) };
    match op {
        Operator::Gt | Operator::GtEq => vec![lower],
        Operator::Lt | Operator::LtEq => vec![upper],
        Operator::Eq => vec![Bound::Lower, Bound::Upper],
        _ => Vec::new(),
    }
}

/// A timestamp literal, as UTC.
fn timestamp(expr: &Expr) -> Option<DateTime<Utc>> {
    let Expr::Literal(value, _) = expr else { return None };
    match value {
        ScalarValue::TimestampSecond(Some(seconds), _) => DateTime::from_timestamp(*seconds, 0),
        ScalarValue::TimestampMillisecond(Some(millis), _) => DateTime::from_timestamp_millis(*millis),
        ScalarValue::TimestampMicrosecond(Some(micros), _) => DateTime::from_timestamp_micros(*micros),
        ScalarValue::TimestampNanosecond(Some(nanos), _) => Some(DateTime::from_timestamp_nanos(*nanos)),
        _ => None,
    }
}

/// `date > D OR (date = D AND hour >= H)` for a lower bound at D H:mm, mirrored for an upper.
fn partition_filter(bound: Bound, at: DateTime<Utc>) -> Option<Expr> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let days = i32::try_from(at.date_naive().signed_duration_since(epoch).num_days()).ok()?;
    let hour = i32::try_from(at.hour()).ok()?;
    debug_assert!(at.year() >= 1, "timestamps before year 1 do not name partitions");
    let date = lit(ScalarValue::Date32(Some(days)));
    let hour = lit(ScalarValue::Int32(Some(hour)));
    let same_day = col("date").eq(date.clone());
    Some(match bound {
        Bound::Lower => col("date").gt(date).or(same_day.and(col("hour").gt_eq(hour))),
        Bound::Upper => col("date").lt(date).or(same_day.and(col("hour").lt_eq(hour))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Expr {
        let micros = text.parse::<DateTime<Utc>>().unwrap().timestamp_micros();
        lit(ScalarValue::TimestampMicrosecond(Some(micros), Some("UTC".into())))
    }

    #[test]
    fn bounds_on_ts_imply_partition_filters() {
        let lower = col("ts").gt_eq(at("2026-11-26T10:17:00Z"));
        let implied = implied_partition_filters(&lower);
        assert_eq!(implied.len(), 1);
        let text = implied[0].to_string();
        assert!(
            text.contains("date > Date32(\"2026-11-26\")") && text.contains("hour >= Int32(10)"),
            "{text}"
        );

        let swapped = at("2026-11-26T10:17:00Z").gt(col("ts"));
        assert!(implied_partition_filters(&swapped)[0].to_string().contains("hour <= Int32(10)"));

        let between = col("ts").between(at("2026-11-26T09:00:00Z"), at("2026-11-27T01:00:00Z"));
        assert_eq!(implied_partition_filters(&between).len(), 2);
        assert_eq!(implied_partition_filters(&col("ts").eq(at("2026-11-26T09:00:00Z"))).len(), 2);
        assert!(implied_partition_filters(&col("ts").not_eq(at("2026-11-26T09:00:00Z"))).is_empty());
        assert!(implied_partition_filters(&col("role").gt_eq(lit("a"))).is_empty());
    }
}
