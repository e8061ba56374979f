//! The operations endpoint: `/metrics` (Prometheus text), `/healthz` (the process is alive) and
//! `/ready` (the pipeline can make progress), served on `[metrics] listen`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// Binds `listen` and serves until `shutdown` resolves. Returns the bound address (useful with
/// port 0) once listening, and the server task.
pub async fn start(
    listen: &str,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} ([metrics] listen)"))?;
    let address = listener.local_addr().context("no local address")?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(metrics);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    tracing::info!(%address, "serving /metrics, /healthz and /ready");
    Ok((address, task))
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.render())
}

async fn ready(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.ready.get() == 1 {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: rolewatch\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let metrics = Arc::new(Metrics::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (address, task) = start("127.0.0.1:0", metrics.clone(), async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();

        metrics.events_stored.inc_by(7);
        let response = get(address, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("rolewatch_lake_events_stored_total 7"), "{response}");
        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200"));

        assert!(get(address, "/ready").await.starts_with("HTTP/1.1 503"));
        metrics.ready.set(1);
        assert!(get(address, "/ready").await.starts_with("HTTP/1.1 200"));

        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_busy_address_is_named() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = taken.local_addr().unwrap().to_string();
        let error = start(&listen, Arc::new(Metrics::new()), async {}).await.err().unwrap();
        assert!(format!("{error:#}").contains(&listen));
    }
}
