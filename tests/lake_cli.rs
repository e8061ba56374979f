//! The lake through the binary: `rolewatch ingest` stores each record of a file once however
//! often (and however grown) the file is ingested, `rolewatch verify` proves the lake intact and
//! names what was altered or deleted, `rolewatch query` reads it back, manifests are signed with
//! a key from `rolewatch keygen`, and the same commands work on a real S3-compatible server
//! (MinIO, built by `scripts/minio.sh install`).

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Output;

use rolewatch_e2e::{repo_root, run_rolewatch};

/// The sample log, as `rolewatch parse` sees it: its bytes and how many events it holds.
fn sample() -> (Vec<u8>, usize) {
    let path = repo_root().join("examples/logs/postgresql.json");
    let parsed =
        run_rolewatch(&repo_root(), &["parse", "--format", "pgaudit-jsonlog", path.to_str().unwrap()], &[]);
    assert!(parsed.status.success(), "{}", text(&parsed.stderr));
    let events = String::from_utf8_lossy(&parsed.stdout).lines().count();
    assert!(events > 50, "the sample holds too few events: {events}");
    (std::fs::read(path).unwrap(), events)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Output and exit status in one message, for assertions.
fn said(output: &Output) -> String {
    format!("status {}\nstdout:\n{}\nstderr:\n{}", output.status, text(&output.stdout), text(&output.stderr))
}

/// The first `lines` lines of `bytes`, newline included.
fn first_lines(bytes: &[u8], lines: usize) -> &[u8] {
    let end = bytes
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(lines - 1)
        .map_or(bytes.len(), |(index, _)| index + 1);
    &bytes[..end]
}

/// The example config with the lake at `lake` and manifests signed with `key`.
fn config(dir: &Path, lake: &str, key: &Path) {
    let example = std::fs::read_to_string(repo_root().join("examples/rolewatch.toml")).unwrap();
    let lake_table = "[lake]\npath = \"./rolewatch-data\"\n";
    assert!(example.contains(lake_table), "examples/rolewatch.toml changed its [lake] table");
    let config = example.replacen(
        lake_table,
        &format!("[lake]\npath = \"{lake}\"\nsigning_key_file = \"{}\"\n", key.display()),
        1,
    );
    std::fs::write(dir.join("rolewatch.toml"), config).unwrap();
}

/// `rolewatch keygen --out dir/name`; returns the key file and its public key.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let output = run_rolewatch(dir, &["keygen", "--out", key.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", said(&output));
    let public = text(&output.stdout).trim().to_owned();
    assert_eq!(public.len(), 64, "a hex Ed25519 public key: {public}");
    let again = run_rolewatch(dir, &["keygen", "--public-of", key.to_str().unwrap()], &[]);
    assert_eq!(text(&again.stdout).trim(), public);
    let refused = run_rolewatch(dir, &["keygen", "--out", key.to_str().unwrap()], &[]);
    assert!(!refused.status.success(), "an existing key must never be overwritten");
    (key, public)
}

/// `rolewatch ingest` of `log` with the config in `dir`; returns stderr.
fn ingest(dir: &Path, log: &Path, env: &[(&str, &str)]) -> String {
    let output = run_rolewatch(dir, &["ingest", "--config", "rolewatch.toml", log.to_str().unwrap()], env);
    assert!(output.status.success(), "{}", said(&output));
    text(&output.stderr)
}

/// `(events, distinct source offsets)` in the lake, through `rolewatch query`.
fn counts(dir: &Path, lake: &str, env: &[(&str, &str)]) -> (u64, u64) {
    let sql = "SELECT count(*) AS n, count(DISTINCT source_offset) AS d FROM events";
    let output = run_rolewatch(dir, &["query", "--lake", lake, "--output", "json", sql], env);
    assert!(output.status.success(), "{}", said(&output));
    let row: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    (row["n"].as_u64().unwrap(), row["d"].as_u64().unwrap())
}

fn verify(dir: &Path, lake: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["verify", "--lake", lake];
    args.extend_from_slice(extra);
    run_rolewatch(dir, &args, env)
}

/// Ingests the first part of the sample, then the grown file, then the same file again.
/// Returns the stderr of each ingest.
fn ingest_growing_sample(dir: &Path, env: &[(&str, &str)]) -> [String; 3] {
    let (bytes, _) = sample();
    let log = dir.join("postgresql.json");
    std::fs::write(&log, first_lines(&bytes, 70)).unwrap();
    let first = ingest(dir, &log, env);
    std::fs::write(&log, &bytes).unwrap();
    let grown = ingest(dir, &log, env);
    let again = ingest(dir, &log, env);
    [first, grown, again]
}

#[test]
fn ingest_stores_each_record_once_and_verify_names_what_was_tampered_with() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (_, events) = sample();
    let (key, public) = keygen(dir, "lake.key");
    config(dir, "./rolewatch-data", &key);

    let [first, grown, again] = ingest_growing_sample(dir, &[]);
    assert!(first.contains("1 chunks committed"), "{first}");
    assert!(grown.contains("1 chunks committed"), "only what the file gained is new:\n{grown}");
    assert!(again.contains("0 chunks committed, 1 already durable"), "{again}");
    assert!(again.contains("rolewatch: 0 alerts"), "a replay raises no alert again:\n{again}");
    assert_eq!(counts(dir, "rolewatch-data", &[]), (events as u64, events as u64), "each event stored once");

    // Intact, and signed by the key the config names.
    let ok = verify(dir, "rolewatch-data", &["--require-signatures", "--trusted-key", &public], &[]);
    assert!(ok.status.success(), "{}", said(&ok));
    assert!(text(&ok.stdout).starts_with("lake intact: 2 manifests"), "{}", said(&ok));
    let (_, stranger) = keygen(dir, "other.key");
    let untrusted = verify(dir, "rolewatch-data", &["--require-signatures", "--trusted-key", &stranger], &[]);
    assert!(!untrusted.status.success(), "signatures by an untrusted key must fail:\n{}", said(&untrusted));

    // Each kind of tampering, on its own copy of the lake, is caught and named.
    let events_dir = dir.join("rolewatch-data/events");
    let parquet = walk(&events_dir)
        .into_iter()
        .find(|path| path.extension().is_some_and(|ext| ext == "parquet"))
        .unwrap();
    let relative = parquet.strip_prefix(dir.join("rolewatch-data")).unwrap().to_str().unwrap().to_owned();
    type Tamper<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Tamper, String); 3] = [
        ("altered", &|lake| flip_a_byte(&lake.join(&relative)), format!("\nhash_mismatch: {relative} ")),
        (
            "deleted",
            &|lake| std::fs::remove_file(lake.join(&relative)).unwrap(),
            format!("\nmissing_file: {relative} "),
        ),
        (
            "manifest deleted",
            &|lake| std::fs::remove_file(lake.join("_manifests/00000000000000000001.json")).unwrap(),
            "\nmissing_manifest: seq 1 ".to_owned(),
        ),
    ];
    for (case, tamper, named) in cases {
        let copy = dir.join(format!("copy-{}", case.replace(' ', "-")));
        copy_dir(&dir.join("rolewatch-data"), &copy);
        tamper(&copy);
        let caught = verify(dir, copy.to_str().unwrap(), &[], &[]);
        assert!(!caught.status.success(), "{case}: verify passed:\n{}", said(&caught));
        assert!(text(&caught.stdout).starts_with("lake NOT intact"), "{case}:\n{}", said(&caught));
        assert!(text(&caught.stdout).contains(&named), "{case}: {named:?} not named:\n{}", said(&caught));
    }
}

#[test]
fn the_lake_on_a_real_s3_compatible_server() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let minio_dir = dir.join("minio");
    let minio = repo_root().join("scripts/minio.sh");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(&minio).args(args).output().unwrap();
        assert!(output.status.success(), "minio.sh {args:?}: {}", said(&output));
        text(&output.stdout)
    };
    run(&["start", minio_dir.to_str().unwrap()]);
    let _stop = Stop(minio.clone(), minio_dir.clone());
    run(&["mb", minio_dir.to_str().unwrap(), "audit"]);
    let env_text = run(&["env", minio_dir.to_str().unwrap()]);
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    assert!(env.iter().any(|(name, _)| *name == "AWS_ENDPOINT_URL"), "{env_text}");

    let lake = "s3://audit/rolewatch";
    let (_, events) = sample();
    let (key, public) = keygen(dir, "lake.key");
    config(dir, lake, &key);
    let [_, grown, again] = ingest_growing_sample(dir, &env);
    assert!(grown.contains("1 chunks committed"), "{grown}");
    assert!(again.contains("0 chunks committed, 1 already durable"), "{again}");
    assert_eq!(counts(dir, lake, &env), (events as u64, events as u64), "each event stored once");
    let ok = verify(dir, lake, &["--require-signatures", "--trusted-key", &public], &env);
    assert!(ok.status.success(), "{}", said(&ok));
    let secret = env.iter().find(|(name, _)| *name == "AWS_SECRET_ACCESS_KEY").unwrap().1;
    assert!(!said(&ok).contains(secret) && !again.contains(secret), "the S3 secret leaked");
    // Nothing is on local disk: the lake is in the bucket.
    assert!(!dir.join("rolewatch-data").exists() && !dir.join("s3:").exists());
}

/// Stops the MinIO started in a directory when dropped.
struct Stop(PathBuf, PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.0).arg("stop").arg(&self.1).output();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    for file in walk(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// Flips one bit in the middle of a file (lake files are read-only; the attacker is not).
fn flip_a_byte(path: &Path) {
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(path, permissions).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

/// AT-07 through the binary: another object already sits at the key an ingest needs. The
/// ingest fails naming the key, the object is left as it was, and the incident is in the
/// manifest chain, where `verify` reports it.
#[test]
fn a_hostile_object_at_the_next_key_is_kept_and_recorded() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (key, _) = keygen(dir, "lake.key");
    config(dir, "./rolewatch-data", &key);
    let (bytes, _) = sample();
    let log = dir.join("postgresql.json");
    std::fs::write(&log, &bytes).unwrap();

    // Learn the key the ingest writes (names derive from the data), in a scratch lake.
    let scratch = dir.join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    config(&scratch, "./rolewatch-data", &key);
    ingest(&scratch, &log, &[]);
    let stored = walk(&scratch.join("rolewatch-data/events"));
    let relative = stored[0].strip_prefix(scratch.join("rolewatch-data")).unwrap().to_owned();

    let planted = dir.join("rolewatch-data").join(&relative);
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, b"not what rolewatch would write").unwrap();
    let output = run_rolewatch(dir, &["ingest", "--config", "rolewatch.toml", log.to_str().unwrap()], &[]);
    assert!(!output.status.success(), "the ingest must fail:\n{}", said(&output));
    assert!(
        text(&output.stderr).contains(relative.to_str().unwrap()),
        "the key is not named:\n{}",
        said(&output)
    );
    assert_eq!(std::fs::read(&planted).unwrap(), b"not what rolewatch would write", "the object was touched");

    let report = verify(dir, "rolewatch-data", &[], &[]);
    assert!(!report.status.success());
    assert!(
        text(&report.stdout).lines().any(|line| line.starts_with("recorded_incident: ")
            && line.ends_with(&format!("foreign object at {}", relative.display()))),
        "{}",
        said(&report)
    );
}

/// An ingest that crashed right after committing the chunk holding a TRUNCATE by a reader role
/// (before detection and the outbox): the next ingest of the same file stores nothing new, but
/// finds the detection intent, reads that chunk back from the lake and detects it, and the
/// alert reaches a real webhook receiver.
#[test]
fn an_ingest_that_crashed_after_a_commit_alerts_on_the_next_run() {
    let work = tempfile::tempdir().unwrap();
    const TRUNCATE_AT: usize = 375;
    let log: String = rolewatch_e2e::pgaudit_statements_with_truncate(1000, TRUNCATE_AT)
        .into_iter()
        .map(|line| line + "\n")
        .collect();
    std::fs::write(work.path().join("pg.json"), log).unwrap();
    let config = format!("[lake]\npath = \"lake\"\nchunk_events = 250\n\n{}", rolewatch_e2e::WEBHOOK_ALERTS);
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    let receiver = rolewatch_e2e::Receiver::start();
    let url = receiver.url();
    let webhook =
        [("E2E_WEBHOOK_URL", url.as_str()), ("E2E_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
    let ingest = ["ingest", "--config", "rolewatch.toml", "--format", "pgaudit-jsonlog", "pg.json"];
    let truncate_alerts = || receiver.count_containing("TRUNCATE");

    let mut env = webhook.to_vec();
    env.push(("ROLEWATCH_CRASH_AT", "after-manifest:2"));
    let crashed = run_rolewatch(work.path(), &ingest, &env);
    let stderr = String::from_utf8_lossy(&crashed.stderr);
    assert!(
        !crashed.status.success() && stderr.contains("ROLEWATCH_CRASH_AT"),
        "not the planted crash:\n{stderr}"
    );
    assert_eq!(truncate_alerts(), 0, "alerted on before the crash");

    let again = run_rolewatch(work.path(), &ingest, &webhook);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("detecting it again"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("TRUNCATE"),
        "the alert was not printed:\n{stderr}"
    );
    assert!(
        rolewatch_e2e::wait_until(std::time::Duration::from_secs(30), || truncate_alerts() > 0),
        "no alert for the TRUNCATE reached the receiver:\n{stderr}"
    );
    let third = run_rolewatch(work.path(), &ingest, &webhook);
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(third.status.success() && !stderr.contains("detecting it again"), "{stderr}");
    assert_eq!(truncate_alerts(), 1, "a third ingest alerted again:\n{stderr}");
}

/// Every version of every object under `path` (`bucket/prefix`): key -> version ids.
fn versions(minio: &rolewatch_e2e::Minio, path: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut versions = std::collections::BTreeMap::<String, Vec<String>>::new();
    for line in minio.mc(&["ls", "--versions", "--recursive", "--json", &format!("local/{path}")]).lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let field =
            |name: &str| entry.get(name).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        versions.entry(field("key")).or_default().push(field("versionId"));
    }
    versions
}

/// The production setup of docs/lake.md on a real MinIO: a bucket with Object Lock and a
/// default retention in compliance mode, so versioning is on and an unconditional put would
/// add a version over stored evidence. An ingest that crashed after writing its files (before
/// their manifest), the ingest that replays them and a re-ingest of the same file leave exactly
/// one version of every object. An object replaced by someone holding the bucket's credentials
/// gets a second version, which `verify` reports; the locked original cannot be deleted.
#[test]
fn the_lake_in_an_object_lock_bucket_keeps_one_version_of_each_object() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let minio = rolewatch_e2e::Minio::start(&dir.join("minio"));
    minio.mc(&["mb", "--with-lock", "local/locked"]);
    minio.mc(&["retention", "set", "--default", "COMPLIANCE", "1d", "local/locked"]);
    let env = minio.root_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    let lake = "s3://locked/rolewatch";
    std::fs::write(dir.join("rolewatch.toml"), format!("[lake]\npath = \"{lake}\"\nchunk_events = 40\n"))
        .unwrap();
    let (bytes, events) = sample();
    std::fs::write(dir.join("postgresql.json"), &bytes).unwrap();
    let ingest = ["ingest", "--config", "rolewatch.toml", "--format", "pgaudit-jsonlog", "postgresql.json"];

    let mut crashing = env.clone();
    crashing.push(("ROLEWATCH_CRASH_AT", "after-files:2"));
    let crashed = run_rolewatch(dir, &ingest, &crashing);
    assert!(
        !crashed.status.success() && text(&crashed.stderr).contains("ROLEWATCH_CRASH_AT"),
        "not the planted crash:\n{}",
        said(&crashed)
    );
    let left = versions(&minio, "locked/rolewatch");
    assert!(left.keys().any(|key| key.starts_with("events/")), "the crash left no file: {left:?}");
    for _ in 0..2 {
        let output = run_rolewatch(dir, &ingest, &env);
        assert!(output.status.success(), "{}", said(&output));
    }
    let stored = versions(&minio, "locked/rolewatch");
    for (key, ids) in &stored {
        assert_eq!(ids.len(), 1, "{key} has {} versions: {ids:?}", ids.len());
    }
    for key in left.keys() {
        assert_eq!(stored.get(key), left.get(key), "{key} was written again");
    }
    assert_eq!(counts(dir, lake, &env), (events as u64, events as u64), "each event stored once");
    let ok = verify(dir, lake, &[], &env);
    assert!(ok.status.success(), "{}", said(&ok));

    // Someone with the bucket's credentials replaces an event file: a new version appears, the
    // original stays and cannot be deleted, and verify names the file.
    let (key, ids) = stored.iter().find(|(key, _)| key.starts_with("events/")).unwrap();
    let forged = dir.join("forged.parquet");
    std::fs::write(&forged, b"not the evidence").unwrap();
    minio.mc(&["cp", forged.to_str().unwrap(), &format!("local/locked/rolewatch/{key}")]);
    assert_eq!(versions(&minio, "locked/rolewatch")[key].len(), 2, "the replacement is a second version");
    let report = verify(dir, lake, &[], &env);
    assert!(!report.status.success(), "{}", said(&report));
    assert!(
        text(&report.stdout)
            .lines()
            .any(|line| line.starts_with("hash_mismatch: ") && line.contains(key.as_str())),
        "{}",
        said(&report)
    );
    let script = repo_root().join("scripts/minio.sh");
    let removal = std::process::Command::new(script)
        .args(["mc", dir.join("minio").to_str().unwrap(), "rm", "--version-id", &ids[0]])
        .arg(format!("local/locked/rolewatch/{key}"))
        .output()
        .unwrap();
    assert!(!removal.status.success(), "a locked version was deleted: {}", said(&removal));
    assert!(versions(&minio, "locked/rolewatch")[key].contains(&ids[0]), "the original version is gone");
}

/// An ingest that crashed after writing a chunk's files, before its manifest, and a file that
/// grew before the next ingest: that chunk was cut at the file's end, which has moved, so the
/// next ingest would cut elsewhere and leave the crash's files unlisted beside a second copy
/// of their records. The chunk's declaration makes it cut at the same byte: the files are
/// written again byte for byte and committed, and the folders hold every record once.
#[test]
fn an_ingest_that_crashed_before_a_manifest_commits_its_files_after_the_file_grew() {
    let work = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..400).map(rolewatch_e2e::pgaudit_statement).collect();
    let log = work.path().join("pg.json");
    std::fs::write(&log, lines[..100].join("\n") + "\n").unwrap();
    std::fs::write(work.path().join("rolewatch.toml"), "[lake]\npath = \"lake\"\nchunk_events = 250\n")
        .unwrap();
    let ingest = ["ingest", "--config", "rolewatch.toml", "--format", "pgaudit-jsonlog", "pg.json"];
    let crashed = run_rolewatch(work.path(), &ingest, &[("ROLEWATCH_CRASH_AT", "after-files:1")]);
    assert!(
        !crashed.status.success() && text(&crashed.stderr).contains("ROLEWATCH_CRASH_AT"),
        "not the planted crash:\n{}",
        said(&crashed)
    );
    let lake = work.path().join("lake");
    let left = rolewatch_e2e::parquet_files(&lake.join("events"));
    assert!(!left.is_empty(), "the crash left no event file");
    assert!(rolewatch_e2e::committed_files(&lake, "events/").is_empty());

    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let again = run_rolewatch(work.path(), &ingest, &[]);
    assert!(again.status.success(), "{}", said(&again));
    assert!(text(&again.stderr).contains("declared but not committed"), "{}", said(&again));
    let listed: Vec<PathBuf> = rolewatch_e2e::committed_files(&lake, "events/");
    for file in &left {
        assert!(listed.contains(file), "{} is still unlisted:\n{}", file.display(), said(&again));
    }
    let stored = rolewatch_e2e::stored_events(&rolewatch_e2e::read_parquet(&rolewatch_e2e::parquet_files(
        &lake.join("events"),
    )));
    let offsets: std::collections::BTreeSet<i64> =
        stored.iter().map(|event| event.source_offset.unwrap()).collect();
    assert_eq!((stored.len(), offsets.len()), (400, 400), "each record once in the folders");
    let verified = verify(work.path(), "lake", &[], &[]);
    assert!(verified.status.success(), "{}", said(&verified));
}
