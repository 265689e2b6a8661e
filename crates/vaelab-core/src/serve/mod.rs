//! `vaelab serve`: a read-only web dashboard over the run store. Pages list the
//! experiments, one experiment's runs with live curves (the page polls a small JSON
//! endpoint), and one run in full. Only files of the store are served, by run id and known
//! file names; the server never writes. Every script and style is served from the binary.
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use crate::store::{RunStore, StoreError};
use views::MetricsCache;

const PAGE: &str = include_str!("../../../../assets/dashboard/dashboard.html");
const SCRIPT: &str = include_str!("../../../../assets/dashboard/dashboard.js");
const STYLE: &str = include_str!("../../../../assets/dashboard/dashboard.css");

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{address}: cannot listen: {source}; choose another --port or stop what uses it")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the web server stopped: {0}")]
    Server(#[source] std::io::Error),
}

/// What the handlers share: the store, the metrics cache and the store's real path.
struct Shared {
    store: RunStore,
    cache: MetricsCache,
    /// The store's canonical path: a served file must resolve inside it.
    root: PathBuf,
}

type AppState = Arc<Shared>;

/// The dashboard's routes over the store at `root`.
pub fn router(root: PathBuf) -> Router {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.clone());
    let shared = Arc::new(Shared {
        store: RunStore::new(root),
        cache: MetricsCache::default(),
        root: canonical,
    });
    Router::new()
        .route("/", get(page))
        .route("/experiments/{name}", get(page))
        .route("/runs/{id}", get(page))
        .route("/assets/dashboard.js", get(script))
        .route("/assets/dashboard.css", get(style))
        .route("/api/charts", get(charts))
        .route("/api/experiments", get(experiments))
        .route("/api/experiments/{name}", get(experiment))
        .route("/api/runs/{id}", get(run))
        .route("/runs/{id}/files/{name}", get(file))
        .fallback(missing)
        .with_state(shared)
}

/// Serves the dashboard on `address` until Ctrl-C; `ready` hears the bound address
/// (with `--port 0`, the port the system chose).
pub fn serve(
    root: PathBuf,
    address: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Server)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Bind {
                address: address.to_string(),
                source,
            })?;
        ready(listener.local_addr().map_err(ServeError::Server)?);
        axum::serve(listener, router(root))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(ServeError::Server)
    })
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn store_error(error: StoreError) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response()
}

async fn missing() -> Response {
    not_found()
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

async fn charts() -> Response {
    Json(views::charts()).into_response()
}

async fn experiments(State(shared): State<AppState>) -> Response {
    match views::experiments(&shared.store) {
        Ok(list) => Json(list).into_response(),
        Err(error) => store_error(error),
    }
}

async fn experiment(State(shared): State<AppState>, Path(name): Path<String>) -> Response {
    match views::experiment(&shared.store, &shared.cache, &name) {
        Ok(runs) => Json(runs).into_response(),
        Err(error) => store_error(error),
    }
}

async fn run(State(shared): State<AppState>, Path(id): Path<String>) -> Response {
    match views::find_run(&shared.store, &id) {
        Ok(Some(dir)) => match views::run_detail(&shared.cache, &dir) {
            Ok(detail) => Json(detail).into_response(),
            Err(error) => store_error(error),
        },
        Ok(None) => not_found(),
        Err(error) => store_error(error),
    }
}

/// A run's picture, by run id and a known file name, and only if it resolves inside the
/// store (a symbolic link out of it is not followed).
async fn file(
    State(shared): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    let Ok(Some(dir)) = views::find_run(&shared.store, &id) else {
        return not_found();
    };
    let Some(path) = views::servable_file(&dir, &name) else {
        return not_found();
    };
    let inside = path
        .canonicalize()
        .is_ok_and(|real| real.starts_with(&shared.root));
    match std::fs::read(&path) {
        Ok(bytes) if inside => ([(header::CONTENT_TYPE, "image/png")], bytes).into_response(),
        _ => not_found(),
    }
}
