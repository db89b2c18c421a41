//! The web UI for responders (`up --web ADDR`, on by default on `127.0.0.1:0`):
//! one page served from assets embedded in the binary (no CDN, works offline) and
//! a JSON API under `/api/` over the same [`NodeHandle`] the control socket uses.
//! The HTTP API, its auth, errors and event stream are specified in
//! `proto/http.md`; the OpenAPI document is `GET /api/openapi.json`.
//!
//! # Layout
//! - this file: [`WebEndpoint`] (bind, refuse a non-loopback address unless
//!   remote access is allowed, the URL with its token, serve until shutdown) and
//!   the router with its route table [`ROUTES`].
//! - [`auth`]: the per-start token, the Host check (DNS-rebinding defence) and
//!   the middleware that applies both plus the security headers.
//! - `error`: the JSON error body and how node errors map to codes and statuses.
//! - `query`: the pure parsers of query strings (`limit`, `seen`, `token`).
//! - `routes`: the JSON handlers; `events`: the server-sent event stream.
//! - `web/assets/`: `index.html`, `app.js`, `app.css` and `openapi.json`.

pub mod auth;
mod error;
mod events;
mod query;
mod routes;

use crate::node::NodeHandle;
use auth::{AllowedHosts, Token};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The API's paths, named once for the route table and the router.
mod path {
    pub(super) const STATUS: &str = "/api/status";
    pub(super) const DEFAULTS: &str = "/api/defaults";
    pub(super) const CHANNELS: &str = "/api/channels";
    pub(super) const MESSAGES: &str = "/api/channels/{channel}/messages";
    pub(super) const MESSAGE: &str = "/api/messages/{id}";
    pub(super) const TRANSCRIBE: &str = "/api/messages/{id}/transcribe";
    pub(super) const PEERS: &str = "/api/peers";
    pub(super) const LOCK: &str = "/api/lock";
    pub(super) const UNLOCK: &str = "/api/unlock";
    pub(super) const EVENTS: &str = "/api/events";
    pub(super) const OPENAPI: &str = "/api/openapi.json";
}

/// Every route of the API, as `(method, path)`: a unit test checks that
/// `openapi.json` lists exactly these, an integration test that each is routed.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", path::STATUS),
    ("GET", path::DEFAULTS),
    ("GET", path::CHANNELS),
    ("GET", path::MESSAGES),
    ("POST", path::MESSAGES),
    ("GET", path::MESSAGE),
    ("POST", path::TRANSCRIBE),
    ("GET", path::PEERS),
    ("POST", path::LOCK),
    ("POST", path::UNLOCK),
    ("GET", path::EVENTS),
    ("GET", path::OPENAPI),
];

/// Where the web UI listens by default: this laptop only, on a free port.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The OpenAPI 3.1 document of the API (hand-written; `ROUTES` is checked against it).
pub const OPENAPI_JSON: &str = include_str!("web/assets/openapi.json");

/// Event streams open at once at most: each holds a broadcast receiver and a task
/// slot; a page needs one, so 16 covers several tabs and stops a runaway client.
pub const MAX_EVENT_STREAMS: usize = 16;

/// Largest request body: a 64 KiB message JSON-escaped fits with room to spare.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// A bound web listener with its token, not yet serving.
#[derive(Debug)]
pub struct WebEndpoint {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    token: Token,
    allow_remote: bool,
}

/// Why the web UI could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// A non-loopback address without `--web-allow-remote`.
    #[error(
        "--web {addr} would serve patient data beyond this laptop: \
         use a 127.0.0.1 address, or add --web-allow-remote if you really mean it"
    )]
    RemoteNotAllowed {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error("cannot listen for the web UI on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl WebEndpoint {
    /// Binds `addr` (port 0 picks a free port) with a fresh random token. A
    /// non-loopback address is refused unless `allow_remote`.
    pub async fn bind(addr: SocketAddr, allow_remote: bool) -> Result<WebEndpoint, WebError> {
        if !addr.ip().is_loopback() && !allow_remote {
            return Err(WebError::RemoteNotAllowed { addr });
        }
        let bind = |source| WebError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        Ok(WebEndpoint {
            listener,
            local_addr,
            token: Token::generate(),
            allow_remote,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL to open: the page, with the token in the fragment (browsers never
    /// send the fragment to a server, so it stays out of logs and `Referer`).
    /// An unspecified bind address (`0.0.0.0`) is shown as `127.0.0.1`.
    pub fn url(&self) -> String {
        let mut shown = self.local_addr;
        if shown.ip().is_unspecified() {
            shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{shown}/#token={}", self.token.as_str())
    }

    /// Serves the page and the API from `node` until `shutdown`; open event
    /// streams end on `shutdown` too, so the graceful shutdown does not wait on them.
    pub async fn run(self, node: NodeHandle, shutdown: CancellationToken) {
        let state = AppState {
            node,
            token: Arc::new(self.token),
            hosts: Arc::new(AllowedHosts::new(self.local_addr, self.allow_remote)),
            streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
            shutdown: shutdown.clone(),
        };
        if let Err(e) = axum::serve(self.listener, router(state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::warn!(error = %e, "web UI stopped");
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    node: NodeHandle,
    token: Arc<Token>,
    hosts: Arc<AllowedHosts>,
    /// Permits for open event streams ([`MAX_EVENT_STREAMS`]).
    streams: Arc<Semaphore>,
    /// Ends event streams at shutdown.
    shutdown: CancellationToken,
}

/// The page, the API (behind the token) and the JSON fallbacks.
fn router(state: AppState) -> axum::Router {
    let api = axum::Router::new()
        .route(path::STATUS, get(routes::status))
        .route(path::DEFAULTS, get(routes::defaults))
        .route(path::CHANNELS, get(routes::channels))
        .route(
            path::MESSAGES,
            get(routes::messages).post(routes::post_message),
        )
        .route(path::MESSAGE, get(routes::message))
        .route(path::TRANSCRIBE, post(routes::transcribe))
        .route(path::PEERS, get(routes::peers))
        .route(path::LOCK, post(routes::lock))
        .route(path::UNLOCK, post(routes::unlock))
        .route(path::EVENTS, get(events::stream))
        .route(path::OPENAPI, get(routes::openapi))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    axum::Router::new()
        .route("/", get(routes::index))
        .route("/app.js", get(routes::app_js))
        .route("/app.css", get(routes::app_css))
        .merge(api)
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::wrong_method)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check_host,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().get(..3), Some("3.1"));
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    documented.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        let mut routed: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
    }

    #[test]
    fn openapi_names_every_error_code_the_handlers_use() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        let codes = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
            ["code"]["enum"]
            .as_array()
            .unwrap();
        for code in error::CODES {
            assert!(
                codes.iter().any(|c| c == code),
                "{code} not in openapi.json"
            );
        }
    }

    #[tokio::test]
    async fn a_public_address_is_refused_without_the_opt_in() {
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let err = WebEndpoint::bind(addr, false).await.unwrap_err();
        assert!(matches!(err, WebError::RemoteNotAllowed { .. }));
        assert!(err.to_string().contains("--web-allow-remote"));
        let ok = WebEndpoint::bind(addr, true).await.unwrap();
        assert!(ok.url().starts_with("http://127.0.0.1:"));
    }

    #[tokio::test]
    async fn the_url_carries_the_token_in_the_fragment() {
        let web = WebEndpoint::bind("127.0.0.1:0".parse().unwrap(), false)
            .await
            .unwrap();
        let url = web.url();
        let port = web.local_addr().port();
        assert!(url.starts_with(&format!("http://127.0.0.1:{port}/#token=")));
        assert_eq!(url.rsplit('=').next().unwrap().len(), 64);
    }
}
