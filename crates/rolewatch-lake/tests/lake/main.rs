//! Integration tests of the lake: the manifest chain, faults (AT-06, AT-07), tampering (AT-08),
//! SQL queries, a real S3-compatible server, and other engines reading the lake.

// Test code: a failed unwrap is a failed test, in the helpers as much as in the tests
// themselves (clippy.toml allows these only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod chain;
mod faults;
mod interop;
mod query;
mod s3;
mod support;
mod tamper;
