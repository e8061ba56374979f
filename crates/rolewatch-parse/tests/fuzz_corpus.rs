//! Replays the fuzz targets' seed corpus and any saved crash (`fuzz/corpus/<target>/`,
//! `fuzz/artifacts/<target>/`) through the same parsers, with the same options as
//! `fuzz/src/lib.rs`: no panic, and the invariants of the property tests hold.

// Helpers outside #[test] functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{check_output, parse_bytes, repo_root};
use rolewatch_event::LogFormat;
use rolewatch_parse::ParserOptions;

#[test]
fn fuzz_corpus_and_artifacts_replay_without_panics() {
    let options = ParserOptions {
        log_line_prefix: Some("%m [%p] %q%u@%d %r %a %c ".to_owned()),
        timezone: Some("Europe/Berlin".to_owned()),
        ..ParserOptions::default()
    };
    let mut replayed = Vec::new();
    for kind in ["corpus", "artifacts"] {
        let Ok(targets) = std::fs::read_dir(repo_root().join("fuzz").join(kind)) else { continue };
        for target in targets {
            let target = target.unwrap().path();
            let name = target.file_name().unwrap().to_string_lossy().into_owned();
            let format: LogFormat = name.replace('_', "-").parse().unwrap();
            for file in std::fs::read_dir(&target).unwrap() {
                let file = file.unwrap().path();
                let input = std::fs::read(&file).unwrap();
                let output = parse_bytes(format, &options, &file.display().to_string(), &input);
                check_output(&input, &output);
                replayed.push(format);
            }
        }
    }
    for format in LogFormat::ALL {
        assert!(replayed.contains(&format), "no seed for {format}");
    }
}
