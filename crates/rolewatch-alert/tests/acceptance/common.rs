//! The test harness: a scriptable HTTP receiver on 127.0.0.1 port 0 (a real axum server),
//! alerts, and config from TOML.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rolewatch_alert::{AlertsConfig, Dispatcher};
use rolewatch_event::{Alert, Severity, Source};
use tokio::time::Instant;

/// What the receiver answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// 429 with this `Retry-After` value.
    TooManyRequests(&'static str),
    /// Sleeps this long, then answers 200 (the client should have given up by then).
    Hang(Duration),
    /// 302 to this location.
    Redirect(String),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn webhook_id(&self) -> String {
        self.headers.get("webhook-id").unwrap().to_str().unwrap().to_owned()
    }
}

#[derive(Default)]
struct ReceiverState {
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

/// A running receiver: answers its script in order, then 200 forever.
#[derive(Clone)]
pub struct Receiver {
    pub address: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start(script: Vec<Reply>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, script)
    }

    pub async fn start_on(address: SocketAddr, script: Vec<Reply>) -> Self {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        Self::serve(listener, script)
    }

    fn serve(listener: tokio::net::TcpListener, script: Vec<Reply>) -> Self {
        let address = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState { script: Mutex::new(script.into()), received: Mutex::default() });
        let router = axum::Router::new().fallback(handle).with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { address, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn handle(
    State(state): State<Arc<ReceiverState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
        at: Instant::now(),
    });
    let reply = state.script.lock().unwrap().pop_front();
    match reply {
        None => StatusCode::OK.into_response(),
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Reply::TooManyRequests(after)) => {
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, after)]).into_response()
        }
        Some(Reply::Hang(duration)) => {
            tokio::time::sleep(duration).await;
            StatusCode::OK.into_response()
        }
        Some(Reply::Redirect(location)) => {
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
    }
}

/// A test alert.
pub fn alert(id: &str, detector: &str, role: &str) -> Alert {
    let ts = "2026-11-26T10:00:00Z".parse().unwrap();
    Alert {
        id: id.to_owned(),
        detector: detector.to_owned(),
        severity: Severity::High,
        role: Some(role.to_owned()),
        ts,
        summary: format!("{role} did something {detector} would flag"),
        source: Source::Postgres,
        server: Some("db1".to_owned()),
        database: Some("shop".to_owned()),
        client_addr: Some("10.9.8.7".to_owned()),
        application: Some("psql".to_owned()),
        session_id: None,
        objects: vec!["public.customers".to_owned()],
        evidence: Some("SELECT * FROM customers WHERE id = 42".to_owned()),
        count: 1,
        last_ts: ts,
        dedup_key: role.to_owned(),
        position: None,
        labels: BTreeMap::new(),
    }
}

/// Parses an `[alerts]` table the way the binary does (as a field of its config).
pub fn config(toml_text: &str) -> AlertsConfig {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        #[serde(default)]
        alerts: AlertsConfig,
    }
    toml::from_str::<Wrapper>(toml_text).unwrap().alerts
}

/// A valid signing secret.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Another one, for rotation.
pub const NEW_SECRET: &str = "whsec_bmV3LWtleS1mb3Itcm90YXRpb24=";

/// Opens a dispatcher whose environment is `variables`.
pub fn open(config: &AlertsConfig, outbox: &std::path::Path, variables: &[(&str, &str)]) -> Dispatcher {
    try_open(config, outbox, variables).unwrap()
}

pub fn try_open(
    config: &AlertsConfig,
    outbox: &std::path::Path,
    variables: &[(&str, &str)],
) -> Result<Dispatcher, rolewatch_alert::AlertError> {
    let variables: BTreeMap<String, String> =
        variables.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
    Dispatcher::open_with_env(config, outbox, &move |name| variables.get(name).cloned())
}

/// A webhook destination section with fast retries, pointing at `url`.
pub fn webhook_section(name: &str, url: &str) -> String {
    format!(
        r#"
[[alerts.webhook]]
name = "{name}"
url = "{url}"
secret_env = "SECRET"
backoff_initial = "1s"
backoff_max = "30s"
timeout = "2s"
rate_limit = "100/s"
"#
    )
}
