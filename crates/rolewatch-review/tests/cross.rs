//! The cross of a catalog with activity, in-process: catalogs as the readers build them, and
//! activity folded from events by the same builder the lake reader feeds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use chrono::{DateTime, Utc};
use rolewatch_review::{
    ActivityBuilder, ActivityEvent, Catalog, CatalogRole, Dialect, Grant, GrantObject, Membership, Period,
    Policy, PolicyConfig, Review, review,
};

fn role(name: &str, can_login: bool) -> CatalogRole {
    CatalogRole {
        name: name.into(),
        host: None,
        can_login,
        superuser: false,
        admin_rights: vec![],
        system: false,
    }
}

fn grant(grantee: &str, privilege: &str, object: GrantObject) -> Grant {
    Grant {
        grantee: grantee.into(),
        grantee_host: None,
        privilege: privilege.into(),
        object,
        grantable: false,
    }
}

fn table(schema: &str, name: &str) -> GrantObject {
    GrantObject::Table { schema: schema.into(), name: name.into() }
}

fn member(role: &str, member: &str, inherit: bool) -> Membership {
    Membership { role: role.into(), member: member.into(), member_host: None, admin_option: false, inherit }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn event(role: &str, application: &str, command: &str, objects: &[&str]) -> ActivityEvent {
    ActivityEvent {
        ts: at("2026-11-20T10:00:00Z"),
        source: "postgres".into(),
        database: Some("shop".into()),
        role: Some(role.into()),
        client_addr: Some("10.1.2.3".into()),
        application: Some(application.into()),
        session_id: Some(format!("{role}-{application}")),
        command: command.into(),
        class: match command {
            "SELECT" => "READ".into(),
            _ => "WRITE".into(),
        },
        objects: objects.iter().map(|object| (*object).to_owned()).collect(),
        statement: Some(format!("{command} ...")),
        success: true,
    }
}

fn run(catalog: &Catalog, events: Vec<ActivityEvent>, policy: PolicyConfig) -> Review {
    let mut builder = ActivityBuilder::new(
        &["postgres", "mariadb"],
        catalog.database.as_deref(),
        catalog.dialect == Dialect::Mysql,
    );
    for event in events {
        builder.observe(event);
    }
    let period = Period { since: at("2026-08-29T00:00:00Z"), until: at("2026-11-27T00:00:00Z") };
    review(catalog, &builder.finish(), &Policy::new(&policy).unwrap(), period)
}

fn postgres_catalog() -> Catalog {
    let mut admin = role("dba", true);
    admin.admin_rights = vec!["CREATEROLE".into()];
    let mut superuser = role("postgres", true);
    superuser.superuser = true;
    let mut system = role("pg_monitor", false);
    system.system = true;
    Catalog {
        dialect: Dialect::Postgres,
        source: "postgres".into(),
        server_version: "15".into(),
        database: Some("shop".into()),
        roles: vec![
            role("alice", true),
            role("readers", false),
            role("bob", true),
            role("svc", true),
            admin,
            superuser,
            system,
            role("orphans", false),
        ],
        memberships: vec![member("readers", "alice", true), member("readers", "bob", false)],
        grants: vec![
            grant("readers", "SELECT", table("public", "orders")),
            grant("bob", "UPDATE", table("public", "orders")),
            grant("PUBLIC", "SELECT", table("public", "menu")),
            grant("svc", "SELECT", table("public", "orders")),
            grant("svc", "REFERENCES", table("public", "orders")),
            grant("dba", "SELECT", table("public", "orders")),
        ],
        default_privileges: vec![],
    }
}

#[test]
fn inherited_use_counts_for_the_group_grant_and_the_membership() {
    let catalog = postgres_catalog();
    let review = run(
        &catalog,
        vec![
            event("alice", "app", "SELECT", &["public.orders"]),
            event("bob", "app", "SELECT", &["public.menu"]),
            event("svc", "api", "SELECT", &["public.orders"]),
            event("svc", "psql", "SELECT", &["public.orders"]),
            event("dba", "api", "SELECT", &["public.orders"]),
        ],
        PolicyConfig {
            admin: vec!["dba".into()],
            service: vec!["svc".into()],
            service_applications: vec!["api".into()],
            ..PolicyConfig::default()
        },
    );
    let unused: Vec<(String, String, String)> = review
        .unused_privileges
        .iter()
        .map(|found| (found.role.clone(), found.privilege.clone(), found.object.clone()))
        .collect();
    // readers' SELECT is used by alice through inheritance; PUBLIC's by bob.
    assert_eq!(unused, [("bob".to_owned(), "UPDATE".to_owned(), "public.orders".to_owned())]);
    assert_eq!(review.catalog.grants_not_judged, 1, "REFERENCES cannot be judged from a log");
    // alice inherits readers and used it; bob does not inherit it and never ran SET ROLE.
    let memberships: Vec<&str> =
        review.unused_memberships.iter().map(|found| found.member.as_str()).collect();
    assert_eq!(memberships, ["bob"]);
    // The superuser never seen is flagged with high risk; system roles never are.
    let postgres = review.unused_roles.iter().find(|found| found.role == "postgres").unwrap();
    assert_eq!(postgres.proposal.risk.level, rolewatch_review::RiskLevel::High);
    assert!(!review.unused_roles.iter().any(|found| found.role == "pg_monitor"));
    // A group role nobody holds or assumes.
    assert!(review.unused_roles.iter().any(|found| found.role == "orphans" && found.kind == "no_members"));
    assert!(!review.unused_roles.iter().any(|found| found.role == "readers"));
    // bob writes nothing but holds UPDATE; dba (CREATEROLE) only reads.
    assert!(
        review
            .broader_than_use
            .iter()
            .any(|found| found.role == "bob" && found.kind == "holds_unused_write_grants")
    );
    let dba = review.broader_than_use.iter().find(|found| found.role == "dba").unwrap();
    assert_eq!(dba.kind, "admin_used_for_routine_reads");
    assert!(
        dba.proposal.proposed_sql.contains(&"ALTER ROLE dba NOCREATEROLE;".to_owned()),
        "{:#?}",
        dba.proposal
    );
    // Origins: the admin from the service's application; the service account from psql.
    let origins: Vec<(&str, &str, Option<&str>)> = review
        .unexpected_origins
        .iter()
        .map(|found| (found.role.as_str(), found.kind.as_str(), found.application.as_deref()))
        .collect();
    assert_eq!(
        origins,
        [
            ("dba", "admin_from_service_origin", Some("api")),
            ("svc", "service_from_other_origin", Some("psql"))
        ]
    );
}

#[test]
fn mariadb_database_grants_cover_every_table_of_the_database() {
    let mut reader = role("reader", true);
    reader.host = Some("%".into());
    let catalog = Catalog {
        dialect: Dialect::Mysql,
        source: "mariadb".into(),
        server_version: "10.11.19-MariaDB".into(),
        database: None,
        roles: vec![reader],
        memberships: vec![],
        grants: vec![
            Grant {
                grantee_host: Some("%".into()),
                ..grant("reader", "SELECT", GrantObject::Schema { schema: "Shop".into() })
            },
            Grant {
                grantee_host: Some("%".into()),
                ..grant("reader", "SELECT", GrantObject::Schema { schema: "hr".into() })
            },
            Grant { grantee_host: Some("%".into()), ..grant("reader", "DELETE", GrantObject::Global) },
        ],
        default_privileges: vec![],
    };
    let mut read = event("reader", "cli", "SELECT", &["shop.orders"]);
    read.source = "mariadb".into();
    let review = run(&catalog, vec![read], PolicyConfig::default());
    let unused: Vec<(&str, &str)> = review
        .unused_privileges
        .iter()
        .map(|found| (found.privilege.as_str(), found.object.as_str()))
        .collect();
    assert_eq!(unused, [("SELECT", "hr.*"), ("DELETE", "*.*")]);
    assert_eq!(
        review.unused_privileges[0].proposal.proposed_sql,
        ["REVOKE SELECT ON `hr`.* FROM 'reader'@'%';"]
    );
    assert_eq!(review.unused_privileges[1].proposal.risk.level, rolewatch_review::RiskLevel::Medium);
}

#[test]
fn every_output_renders_every_finding() {
    let catalog = postgres_catalog();
    let review =
        run(&catalog, vec![event("svc", "psql", "SELECT", &["public.orders"])], PolicyConfig::default());
    let json: serde_json::Value =
        serde_json::from_str(&rolewatch_review::render::json(&review).unwrap()).unwrap();
    for key in
        ["unused_roles", "unused_privileges", "broader_than_use", "unexpected_origins", "unused_memberships"]
    {
        assert!(json[key].is_array(), "{key}");
    }
    let markdown = rolewatch_review::render::markdown(&review);
    let html = rolewatch_review::render::html(&review);
    for found in &review.unused_privileges {
        let heading = format!("{} on {} held by {}", found.privilege, found.object, found.role);
        assert!(markdown.contains(&heading), "{heading}");
        assert!(html.contains(&heading), "{heading}");
    }
    assert!(!html.contains("<link") && !html.contains(" src="), "self-contained");
}

proptest::proptest! {
    /// Whatever the statement, command and objects, folding never panics and every exercised
    /// privilege is one a review judges.
    #[test]
    fn folding_any_statement_never_panics(
        statement in ".{0,80}",
        command in proptest::sample::select(vec!["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE TABLE", "COPY", "SET", "RESET", "MERGE", "x"]),
        objects in proptest::collection::vec("[a-z.\"`]{0,12}", 0..3),
        prefix in proptest::sample::select(vec!["", "SET ROLE ", "RESET ROLE", "TRUNCATE ", "SET SESSION ROLE "]),
    ) {
        let mut event = event("r", "app", command, &[]);
        event.objects = objects;
        event.statement = Some(format!("{prefix}{statement}"));
        for (_, privilege) in rolewatch_review::privileges_exercised(&event) {
            proptest::prop_assert!(rolewatch_review::JUDGED_PRIVILEGES.contains(&privilege));
        }
        let mut builder = ActivityBuilder::new(&["postgres"], None, false);
        builder.observe(event.clone());
        builder.observe(event);
    }
}
