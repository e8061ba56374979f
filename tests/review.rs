//! `rolewatch review` end to end against real servers.
//!
//! PostgreSQL: a real PostgreSQL 15 with pgAudit (scripts/pg-sandbox.sh) gets a scripted
//! history (roles, grants, a membership used through `SET ROLE` and one never used, busy roles,
//! a login role never used, one that only fails to log in); its pgAudit log is ingested by the
//! real `rolewatch ingest`, and the real `rolewatch review` reads the live catalog and the lake.
//!
//! MariaDB: a real mariadbd with its server_audit plugin (scripts/mariadb-server.sh) gets a
//! scripted history of the same shape; its audit log is ingested by the real binary.
//!
//! The HTML report is rendered by a real headless Chromium, which must lay out its charts.

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;

use rolewatch_e2e::{Sandbox, run_client, run_rolewatch};
use serde_json::Value;

const PG_HISTORY_SETUP: &str = r"
ALTER ROLE postgres PASSWORD 'postgres_pw';
CREATE ROLE app_reader    LOGIN PASSWORD 'app_reader_pw';
CREATE ROLE app_writer    LOGIN PASSWORD 'app_writer_pw';
CREATE ROLE report_reader LOGIN PASSWORD 'report_reader_pw';
CREATE ROLE svc_api       LOGIN PASSWORD 'svc_api_pw';
CREATE ROLE dba_admin     LOGIN CREATEROLE CREATEDB PASSWORD 'dba_admin_pw';
CREATE ROLE legacy_etl    LOGIN PASSWORD 'legacy_etl_pw';
CREATE ROLE guessed       LOGIN PASSWORD 'guessed_pw';
CREATE ROLE ops       NOLOGIN;
CREATE ROLE auditors  NOLOGIN;
CREATE DATABASE shop;
\connect shop
CREATE TABLE public.orders (id integer PRIMARY KEY, customer text NOT NULL, amount numeric(12,2));
CREATE TABLE public.customers (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO public.orders VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30);
INSERT INTO public.customers VALUES (1, 'a'), (2, 'b');
GRANT SELECT ON public.orders TO app_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders TO app_writer;
GRANT SELECT, INSERT ON public.orders TO report_reader;
GRANT SELECT ON public.orders, public.customers TO svc_api;
GRANT SELECT ON public.customers TO legacy_etl;
GRANT SELECT ON public.orders TO dba_admin;
GRANT TRUNCATE ON public.orders TO ops;
GRANT ops TO app_writer;
GRANT SELECT ON public.customers TO auditors;
GRANT auditors TO report_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO legacy_etl;
";

fn psql(port: u16, role: &str, password: &str, application: &str) -> Command {
    let mut command = Command::new("psql");
    command
        .args(["-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", role, "-d", "shop", "-f", "-"])
        .env("PGPASSWORD", password)
        .env("PGAPPNAME", application);
    command
}

fn session(port: u16, role: &str, application: &str, sql: &str) {
    run_client(psql(port, role, &format!("{role}_pw"), application), sql);
}

/// `psql` as the superuser over the sandbox's unix socket (trusted), reading SQL on stdin.
fn superuser_psql(sandbox: &Sandbox, database: &str) -> Command {
    let mut command = Command::new("psql");
    command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"]).arg(sandbox.dir()).args([
        "-p",
        &sandbox.port().to_string(),
        "-U",
        "postgres",
        "-d",
        database,
        "-f",
        "-",
    ]);
    command
}

fn scripted_pg_history(sandbox: &Sandbox) {
    let port = sandbox.port();
    let mut setup = superuser_psql(sandbox, "postgres");
    setup.env("PGAPPNAME", "setup");
    run_client(setup, PG_HISTORY_SETUP);

    // Busy roles: each uses what it holds.
    for _ in 0..3 {
        session(
            port,
            "app_reader",
            "webapp",
            "SELECT * FROM orders WHERE id = 1;\nSELECT count(*) FROM orders;\n",
        );
    }
    session(
        port,
        "app_writer",
        "billing",
        "INSERT INTO orders VALUES (10, 'walk-in', 5);\n\
         UPDATE orders SET amount = 6 WHERE id = 10;\n\
         DELETE FROM orders WHERE id = 10;\n\
         SELECT count(*) FROM orders;\n\
         SET ROLE ops;\n\
         TRUNCATE orders;\n\
         RESET ROLE;\n\
         INSERT INTO orders VALUES (1, 'a', 10);\n",
    );
    session(
        port,
        "report_reader",
        "reports",
        "SELECT customer, sum(amount) FROM orders GROUP BY customer;\n",
    );
    session(port, "svc_api", "api-server", "SELECT * FROM orders;\nSELECT * FROM customers;\n");
    // The service account used by hand.
    session(port, "svc_api", "psql", "SELECT * FROM customers WHERE id = 2;\n");
    // The admin only reads.
    session(port, "dba_admin", "psql", "SELECT count(*) FROM orders;\n");
    // Someone guessing a password.
    for attempt in 1..=3 {
        let output = psql(port, "guessed", &format!("wrong_{attempt}"), "psql")
            .arg("-c")
            .arg("SELECT 1")
            .output()
            .unwrap();
        assert!(!output.status.success(), "a wrong password must fail");
        assert!(String::from_utf8_lossy(&output.stderr).contains("password authentication failed"));
    }
}

/// Writes `mark` into the log with a statement and waits until the log collector has written
/// it; returns the jsonlog file.
fn wait_for_log_mark(sandbox: &Sandbox, mark: &str) -> std::path::PathBuf {
    run_client(superuser_psql(sandbox, "shop"), &format!("SELECT '{mark}';\n"));
    let log = sandbox.dir().join("log/postgresql.json");
    for _ in 0..100 {
        if std::fs::read_to_string(&log).is_ok_and(|text| text.contains(mark)) {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the end of the history never reached {}", log.display());
}

fn review_json(dir: &Path, catalog_url: &str, password: &str, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["review", "--config", "rolewatch.toml", "--catalog", catalog_url, "--since", "2d"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--output", "json"]);
    let output = run_rolewatch(dir, &args, &[("ROLEWATCH_CATALOG_PASSWORD", password)]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "review failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!stdout.contains(password) && !stderr.contains(password), "the catalog password was printed");
    (serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}")), stderr)
}

fn rows<'a>(review: &'a Value, key: &str) -> &'a Vec<Value> {
    review[key].as_array().unwrap_or_else(|| panic!("no array {key} in {review:#}"))
}

fn has(review: &Value, key: &str, predicate: impl Fn(&Value) -> bool) -> bool {
    rows(review, key).iter().any(predicate)
}

fn sql_of(finding: &Value) -> Vec<String> {
    finding["proposed_sql"].as_array().unwrap().iter().map(|line| line.as_str().unwrap().to_owned()).collect()
}

const CONFIG: &str = r#"
[lake]
path = "lake"

[roles]
admin = ["postgres", "root", "dba_admin"]
reader = ["app_reader", "report_reader"]
writer = ["app_writer"]
service = ["svc_api"]

[origins]
service_applications = ["api-server"]
"#;

#[test]
fn postgres_review_flags_what_nobody_uses_and_spares_busy_roles() {
    let work = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start("pg-sandbox.sh", &work.path().join("pg"));
    scripted_pg_history(&sandbox);
    // Ingest the log so far with the real binary (a copy: the server keeps writing), then
    // review the live catalog.
    let log = work.path().join("postgresql.json");
    std::fs::copy(wait_for_log_mark(&sandbox, "rolewatch history end"), &log).unwrap();
    std::fs::write(work.path().join("rolewatch.toml"), CONFIG).unwrap();
    let output =
        run_rolewatch(work.path(), &["ingest", "--config", "rolewatch.toml", log.to_str().unwrap()], &[]);
    assert!(output.status.success(), "ingest failed:\n{}", String::from_utf8_lossy(&output.stderr));

    let url = format!("postgres://postgres@127.0.0.1:{}/shop", sandbox.port());
    let (review, stderr) = review_json(work.path(), &url, "postgres_pw", &[]);
    assert!(stderr.contains("read-only session"), "{stderr}");
    assert!(review["lake"]["events"].as_u64().unwrap() > 20, "{:#}", review["lake"]);

    // Unused roles: the login never used, the one only failing; never the busy ones.
    let unused_role = |role: &str, kind: &str| {
        has(&review, "unused_roles", |found| found["role"] == role && found["kind"] == kind)
    };
    assert!(unused_role("legacy_etl", "never_seen"), "{:#}", review["unused_roles"]);
    assert!(unused_role("guessed", "only_failing"), "{:#}", review["unused_roles"]);
    for busy in ["app_reader", "app_writer", "report_reader", "svc_api", "dba_admin", "ops", "auditors"] {
        assert!(!has(&review, "unused_roles", |found| found["role"] == busy), "{busy} flagged unused");
    }
    let legacy = rows(&review, "unused_roles").iter().find(|found| found["role"] == "legacy_etl").unwrap();
    let legacy_sql = sql_of(legacy);
    assert!(legacy_sql.contains(&"ALTER ROLE legacy_etl NOLOGIN;".to_owned()), "{legacy_sql:#?}");
    assert!(legacy_sql.contains(&"REVOKE SELECT ON TABLE public.customers FROM legacy_etl;".to_owned()));
    assert!(legacy_sql.iter().any(|line| line.starts_with(
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public REVOKE SELECT ON TABLES FROM legacy_etl"
    )));
    assert_eq!(legacy_sql.last().unwrap(), "DROP ROLE legacy_etl;");
    assert!(!legacy["evidence"].as_array().unwrap().is_empty() && legacy["risk"]["level"] == "medium");

    // Unused privileges: (role, privilege, object) granted and never exercised.
    let unused_privilege = |role: &str, privilege: &str, object: &str| {
        has(&review, "unused_privileges", |found| {
            found["role"] == role && found["privilege"] == privilege && found["object"] == object
        })
    };
    assert!(
        unused_privilege("report_reader", "INSERT", "public.orders"),
        "{:#}",
        review["unused_privileges"]
    );
    assert!(unused_privilege("auditors", "SELECT", "public.customers"));
    assert!(unused_privilege("legacy_etl", "SELECT", "public.customers"));
    for (role, privilege, object) in [
        ("app_reader", "SELECT", "public.orders"),
        ("app_writer", "SELECT", "public.orders"),
        ("app_writer", "INSERT", "public.orders"),
        ("app_writer", "UPDATE", "public.orders"),
        ("app_writer", "DELETE", "public.orders"),
        ("report_reader", "SELECT", "public.orders"),
        ("svc_api", "SELECT", "public.orders"),
        ("svc_api", "SELECT", "public.customers"),
        ("dba_admin", "SELECT", "public.orders"),
        // Used through SET ROLE ops by app_writer.
        ("ops", "TRUNCATE", "public.orders"),
    ] {
        assert!(!unused_privilege(role, privilege, object), "{role} {privilege} {object} is used");
    }
    let insert = rows(&review, "unused_privileges")
        .iter()
        .find(|found| found["role"] == "report_reader" && found["privilege"] == "INSERT")
        .unwrap();
    assert_eq!(sql_of(insert), ["REVOKE INSERT ON TABLE public.orders FROM report_reader;"]);

    // Broader than use: a reader holding a write grant it never uses; an admin that only reads.
    assert!(has(&review, "broader_than_use", |found| found["role"] == "report_reader"
        && found["kind"] == "holds_unused_write_grants"));
    assert!(has(&review, "broader_than_use", |found| found["role"] == "dba_admin"
        && found["kind"] == "admin_used_for_routine_reads"));
    assert!(!has(&review, "broader_than_use", |found| found["role"] == "app_writer"));

    // Unexpected origins: the service account used from psql, not from its application.
    assert!(has(&review, "unexpected_origins", |found| found["role"] == "svc_api"
        && found["application"] == "psql"
        && found["kind"] == "service_from_other_origin"));
    assert!(!has(&review, "unexpected_origins", |found| found["role"] == "svc_api"
        && found["application"] == "api-server"));

    // Memberships: auditors never used by report_reader; ops used through SET ROLE.
    assert!(has(&review, "unused_memberships", |found| found["role"] == "auditors"
        && found["member"] == "report_reader"));
    assert!(!has(&review, "unused_memberships", |found| found["role"] == "ops"));

    // The activity table knows the SET ROLE switch.
    let app_writer = rows(&review, "activity").iter().find(|row| row["role"] == "app_writer").unwrap();
    assert_eq!(app_writer["set_role"]["ops"], 1, "{app_writer:#}");

    // A period that ends before the history: everything the history did is out of it.
    let markdown = run_rolewatch(
        work.path(),
        &["review", "--config", "rolewatch.toml", "--catalog", &url, "--output", "markdown"],
        &[("ROLEWATCH_CATALOG_PASSWORD", "postgres_pw")],
    );
    assert!(markdown.status.success());
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        markdown.contains("## Unused roles")
            && markdown.contains("REVOKE INSERT ON TABLE public.orders FROM report_reader;")
    );

    let html_file = work.path().join("review.html");
    let html = run_rolewatch(
        work.path(),
        &["review", "--config", "rolewatch.toml", "--catalog", &url, "--output", "html"],
        &[("ROLEWATCH_CATALOG_PASSWORD", "postgres_pw")],
    );
    assert!(html.status.success());
    std::fs::write(&html_file, &html.stdout).unwrap();
    check_rendered_in_chromium(&html_file, rows(&review, "activity").len());

    // What the review sessions did, as pgAudit saw it: nothing but reads and session settings.
    let log = wait_for_log_mark(&sandbox, "rolewatch review end");
    let parsed = run_rolewatch(work.path(), &["parse", log.to_str().unwrap()], &[]);
    assert!(parsed.status.success());
    let review_events: Vec<Value> = String::from_utf8_lossy(&parsed.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["application"] == "rolewatch-review")
        .collect();
    assert!(review_events.len() >= 3, "the review sessions are in the audit log: {review_events:#?}");
    for event in &review_events {
        let class = event["class"].as_str().unwrap();
        assert!(
            ["READ", "MISC", "MISC_SET", "CONNECT", "DISCONNECT"].contains(&class),
            "the review wrote: {event:#}"
        );
    }
}

#[test]
fn a_wrong_catalog_password_fails_without_printing_it() {
    let work = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start("pg-sandbox.sh", &work.path().join("pg"));
    run_client(
        superuser_psql(&sandbox, "postgres"),
        "ALTER ROLE postgres PASSWORD 'right_pw';
",
    );
    std::fs::write(work.path().join("rolewatch.toml"), CONFIG).unwrap();
    let url = format!("postgres://postgres:Wr0ng-Secret@127.0.0.1:{}/postgres", sandbox.port());
    let output =
        run_rolewatch(work.path(), &["review", "--config", "rolewatch.toml", "--catalog", &url], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("password authentication failed"), "{stderr}");
    assert!(
        !stderr.contains("Wr0ng-Secret") && !String::from_utf8_lossy(&output.stdout).contains("Wr0ng-Secret")
    );
    assert!(stderr.contains("postgres:***@127.0.0.1"), "{stderr}");
}

/// Renders the page in headless Chromium and checks that the charts were laid out: the page's
/// inline check counts the SVG bars with a non-zero size after layout.
fn check_rendered_in_chromium(html_file: &Path, roles: usize) {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", html_file.display());
    let output = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &url])
        .output()
        .expect("chromium runs (scripts/install-deps.sh installs it)");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    let dom = String::from_utf8_lossy(&output.stdout);
    let rendered: usize = dom
        .split("data-rendered-bars=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("the page's layout check did not run:\n{dom}"));
    // At least one bar per role seen in the per-role chart, one per active day in the daily one.
    assert!(rendered >= roles, "only {rendered} chart bars laid out for {roles} roles");
    assert!(dom.contains("id=\"chart-per-role\"") && dom.contains("Unused privileges"));

    let screenshot = html_file.with_extension("png");
    let output = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .args(["--window-size=1200,1600", &url])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium screenshot failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a blank or missing screenshot ({} bytes)",
        png.len()
    );
    if let Ok(keep) = std::env::var("ROLEWATCH_KEEP_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).unwrap();
    }
}

const MARIADB_SETUP: &str = r"
CREATE DATABASE shop;
CREATE TABLE shop.orders (id INT PRIMARY KEY, customer VARCHAR(64), amount DECIMAL(10,2));
CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64));
CREATE USER app_reader@'127.0.0.1' IDENTIFIED BY 'app_reader_pw';
CREATE USER app_writer@'127.0.0.1' IDENTIFIED BY 'app_writer_pw';
CREATE USER report_reader@'%' IDENTIFIED BY 'report_reader_pw';
CREATE USER legacy_etl@'%' IDENTIFIED BY 'legacy_etl_pw';
CREATE USER rw_review@'127.0.0.1' IDENTIFIED BY 'rw_review_pw';
GRANT SELECT ON mysql.* TO rw_review@'127.0.0.1';
GRANT SELECT ON shop.orders TO app_reader@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.orders TO app_writer@'127.0.0.1';
GRANT SELECT ON shop.* TO report_reader@'%';
GRANT INSERT ON shop.orders TO report_reader@'%';
GRANT SELECT ON shop.customers TO legacy_etl@'%';
CREATE ROLE ops;
GRANT UPDATE ON shop.customers TO ops;
GRANT ops TO app_writer@'127.0.0.1';
CREATE ROLE auditors;
GRANT SELECT ON shop.customers TO auditors;
GRANT auditors TO report_reader@'%';
";

/// A TCP session of `user` (password `<user>_pw`) to database `shop`, reading SQL on stdin.
fn mariadb_session(sandbox: &Sandbox, user: &str, password: &str) -> Command {
    let mut command = Command::new("mariadb");
    command
        .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", &sandbox.port().to_string()])
        .args(["-u", user, &format!("-p{password}"), "shop"]);
    command
}

fn mariadb_root(sandbox: &Sandbox) -> Command {
    let mut command = Command::new("mariadb");
    command.args(["--no-defaults", "-u", "root", "-S"]).arg(sandbox.dir().join("mysqld.sock"));
    command
}

/// The scripted MariaDB history; returns its server_audit log once the last statement is in it.
fn scripted_mariadb_history(sandbox: &Sandbox) -> std::path::PathBuf {
    run_client(mariadb_root(sandbox), MARIADB_SETUP);
    let session =
        |user: &str, sql: &str| run_client(mariadb_session(sandbox, user, &format!("{user}_pw")), sql);
    // Busy accounts: each uses what it holds.
    for _ in 0..2 {
        session("app_reader", "SELECT * FROM orders WHERE id = 1;\n");
    }
    session(
        "app_writer",
        "INSERT INTO orders VALUES (9, 'x', 1);\n\
         UPDATE orders SET amount = 2 WHERE id = 9;\n\
         DELETE FROM orders WHERE id = 9;\n\
         SET ROLE ops;\n\
         UPDATE customers SET name = 'b';\n\
         SET ROLE NONE;\n",
    );
    session("report_reader", "SELECT customer, sum(amount) FROM orders GROUP BY customer;\n");
    // legacy_etl only fails to log in.
    let output = mariadb_session(sandbox, "legacy_etl", "wrong").arg("-e").arg("SELECT 1").output().unwrap();
    assert!(!output.status.success(), "a wrong password must fail");
    run_client(mariadb_root(sandbox), "SELECT 'rolewatch history end';\n");
    let log = sandbox.dir().join("server_audit.log");
    let written = rolewatch_e2e::wait_until(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("rolewatch history end"))
    });
    assert!(written, "the end of the history never reached {}", log.display());
    log
}

#[test]
fn mariadb_review_reads_accounts_roles_and_grants() {
    let work = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start("mariadb-server.sh", &work.path().join("mariadb"));
    // Ingest a copy of the audit log with the real binary (server_audit writes UTC here).
    let log = work.path().join("server_audit.log");
    std::fs::copy(scripted_mariadb_history(&sandbox), &log).unwrap();
    std::fs::write(work.path().join("rolewatch.toml"), CONFIG).unwrap();
    let ingest = ["ingest", "--config", "rolewatch.toml", "--format", "mariadb-audit", "--timezone", "UTC"];
    let output = run_rolewatch(work.path(), &[&ingest[..], &[log.to_str().unwrap()]].concat(), &[]);
    assert!(output.status.success(), "ingest failed:\n{}", String::from_utf8_lossy(&output.stderr));

    let url = format!("mysql://rw_review@127.0.0.1:{}/", sandbox.port());
    let (review, stderr) = review_json(work.path(), &url, "rw_review_pw", &[]);
    assert!(stderr.contains("mariadb"), "{stderr}");
    assert!(review["lake"]["events"].as_u64().unwrap() > 10, "{:#}", review["lake"]);

    let unused_role = |role: &str, kind: &str| {
        has(&review, "unused_roles", |found| found["role"] == role && found["kind"] == kind)
    };
    assert!(unused_role("legacy_etl", "only_failing"), "{:#}", review["unused_roles"]);
    for busy in ["app_reader", "app_writer", "report_reader", "ops", "auditors"] {
        assert!(!has(&review, "unused_roles", |found| found["role"] == busy), "{busy} flagged unused");
    }
    let legacy = rows(&review, "unused_roles").iter().find(|found| found["role"] == "legacy_etl").unwrap();
    assert!(sql_of(legacy).contains(&"ALTER USER 'legacy_etl'@'%' ACCOUNT LOCK;".to_owned()), "{legacy:#}");
    assert!(sql_of(legacy).contains(&"DROP USER 'legacy_etl'@'%';".to_owned()));

    let unused_privilege = |role: &str, privilege: &str, object: &str| {
        has(&review, "unused_privileges", |found| {
            found["role"] == role && found["privilege"] == privilege && found["object"] == object
        })
    };
    assert!(unused_privilege("report_reader", "INSERT", "shop.orders"), "{:#}", review["unused_privileges"]);
    assert!(unused_privilege("auditors", "SELECT", "shop.customers"));
    assert!(unused_privilege("legacy_etl", "SELECT", "shop.customers"));
    for (role, privilege, object) in [
        ("app_reader", "SELECT", "shop.orders"),
        ("app_writer", "INSERT", "shop.orders"),
        ("app_writer", "UPDATE", "shop.orders"),
        ("app_writer", "DELETE", "shop.orders"),
        ("report_reader", "SELECT", "shop.*"),
        ("ops", "UPDATE", "shop.customers"),
    ] {
        assert!(!unused_privilege(role, privilege, object), "{role} {privilege} {object} is used");
    }
    let insert = rows(&review, "unused_privileges")
        .iter()
        .find(|found| found["role"] == "report_reader" && found["privilege"] == "INSERT")
        .unwrap();
    assert_eq!(sql_of(insert), ["REVOKE INSERT ON `shop`.`orders` FROM 'report_reader'@'%';"]);

    assert!(has(&review, "broader_than_use", |found| found["role"] == "report_reader"
        && found["kind"] == "holds_unused_write_grants"));
    assert!(has(&review, "unused_memberships", |found| found["role"] == "auditors"
        && found["member"] == "report_reader"
        && sql_of(found) == ["REVOKE 'auditors' FROM 'report_reader'@'%';"]));
    assert!(!has(&review, "unused_memberships", |found| found["role"] == "ops"));
}

/// `sslmode=require` in the catalog URL is honoured: refused by a server without TLS, and the
/// review works once the server speaks TLS (a self-signed certificate made for the test).
#[test]
fn the_catalog_can_be_read_over_tls() {
    let work = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start("pg-sandbox.sh", &work.path().join("pg"));
    let superuser = || superuser_psql(&sandbox, "postgres");
    run_client(superuser(), "ALTER ROLE postgres PASSWORD 'tls_pw';\n");
    std::fs::write(work.path().join("rolewatch.toml"), CONFIG).unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=require", sandbox.port());
    let review = |expect_success: bool| {
        let output = run_rolewatch(
            work.path(),
            &["review", "--config", "rolewatch.toml", "--catalog", &url, "--output", "json"],
            &[("ROLEWATCH_CATALOG_PASSWORD", "tls_pw")],
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.success(), expect_success, "{stderr}");
        stderr
    };
    let refused = review(false);
    assert!(refused.to_lowercase().contains("tls") || refused.to_lowercase().contains("ssl"), "{refused}");

    let data = sandbox.dir().join("data");
    let status = Command::new("openssl")
        .args(["req", "-new", "-x509", "-days", "1", "-nodes", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(data.join("server.key"))
        .arg("-out")
        .arg(data.join("server.crt"))
        .output()
        .unwrap();
    assert!(status.status.success(), "openssl: {}", String::from_utf8_lossy(&status.stderr));
    // The server's OS user must own its key (`postgres` when the tests run as root).
    let owner =
        std::fs::metadata(&data).map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata)).unwrap();
    for name in ["server.key", "server.crt"] {
        std::os::unix::fs::chown(data.join(name), Some(owner), None).unwrap();
    }
    std::fs::set_permissions(data.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .unwrap();
    run_client(superuser(), "ALTER SYSTEM SET ssl = on;\nSELECT pg_reload_conf();\n");
    assert!(
        rolewatch_e2e::wait_until(std::time::Duration::from_secs(10), || {
            run_client(superuser(), "SHOW ssl;\n").contains("on")
        }),
        "ssl never turned on"
    );
    let stderr = review(true);
    assert!(stderr.contains("read-only session"), "{stderr}");
}
