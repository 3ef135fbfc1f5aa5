//! `keyward serve`: the token service (SPEC.md §5). HTTP only: every use case is a
//! call into the core ([`keyward::service::grants::TokenService`], the services and
//! the [`Verifier`]); this module never touches SQL.

// Handlers return `Result<_, Response>` (axum's idiom); a response is ~128 bytes.
#![allow(clippy::result_large_err)]

mod api;
mod authorize;
mod limit;
mod oauth;
pub mod params;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use keyward::service::grants::{GrantError, TokenService};
use keyward::service::settings::DEFAULT_ISSUER;
use keyward::service::tokens::Verifier;
use keyward::{Error, Keyward, Result};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Options of `keyward serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: String,
    pub domain: Option<String>,
    pub trust_proxy: bool,
}

pub(crate) struct Inner {
    pub svc: Arc<TokenService>,
    pub verifier: Arc<Verifier>,
    pub limits: RwLock<Arc<limit::Limits>>,
    pub opts: ServeOptions,
    last_key_reload: AtomicI64,
}

#[derive(Clone)]
pub(crate) struct App(pub Arc<Inner>);

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The request's domain: (name, id).
pub(crate) type Domain = (String, String);

impl Inner {
    fn kw(&self) -> &Keyward {
        self.svc.keyward()
    }

    /// The request's domain: `Host` (or `X-Forwarded-Host` behind a trusted proxy:
    /// its last entry, the one the proxy set, as for `X-Forwarded-For`) when it names
    /// a known domain, else `--domain`.
    pub fn domain(&self, headers: &HeaderMap) -> Option<Domain> {
        let fwd = self
            .opts
            .trust_proxy
            .then(|| {
                headers
                    .get_all("x-forwarded-host")
                    .iter()
                    .next_back()
                    .and_then(|v| v.to_str().ok())
            })
            .flatten()
            .and_then(|v| v.rsplit(',').next().map(str::trim));
        let host = fwd.or_else(|| header_str(headers, header::HOST.as_str()));
        if let Some(h) = host.map(host_part)
            && let Some(id) = self.svc.domain_id(&h)
        {
            return Some((h, id));
        }
        let d = self.opts.domain.as_ref()?;
        self.svc.domain_id(d).map(|id| (d.clone(), id))
    }

    /// The client's address: behind a trusted proxy, the last `X-Forwarded-For` entry,
    /// the one the proxy itself appended (entries before it came from the client and
    /// are whatever it chose to send, so a rate limit keyed on them could be dodged).
    pub fn address(&self, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
        if self.opts.trust_proxy
            && let Some(ip) = headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
        peer.ip()
    }

    /// After a revocation made through this service: pulls it into the verifier now,
    /// so this process refuses the token from its very next request instead of at the
    /// next tick (other processes' revocations still arrive with the tick).
    pub async fn revocations_changed(&self) {
        if let Err(e) = self.verifier.refresh().await {
            tracing::warn!(error = %e, "reloading revocations failed; the tick will retry");
        }
    }

    /// After a failed grant: a reused refresh token or authorization code has just had
    /// its family revoked, which this process takes in before it answers (as after
    /// [`App::revocations_changed`]), so the family's access tokens stop at once.
    pub async fn grant_failed(&self, e: &GrantError) {
        if matches!(e, GrantError::Reused(_)) {
            self.revocations_changed().await;
        }
    }

    /// Verifies a bearer token in memory; reloads the signing keys (at most once a
    /// second) when it names an unknown key.
    pub async fn verify(
        &self,
        jwt: &str,
    ) -> std::result::Result<keyward::token::AccessClaims, keyward::token::Reason> {
        match self.verifier.verify(jwt) {
            Err(keyward::token::Reason::UnknownKey) => {
                let now = keyward::model::now();
                let last = self.last_key_reload.load(Ordering::Relaxed);
                if now > last
                    && self
                        .last_key_reload
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    if let Err(e) = self.verifier.reload_keys().await {
                        tracing::warn!(error = %e, "reloading signing keys failed");
                    }
                    return self.verifier.verify(jwt);
                }
                Err(keyward::token::Reason::UnknownKey)
            }
            r => r,
        }
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `Host` header value without the port, lowercased.
fn host_part(h: &str) -> String {
    let h = h.trim();
    let host = if h.starts_with('[') {
        h.split(']')
            .next()
            .map(|x| format!("{x}]"))
            .unwrap_or_default()
    } else {
        h.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map(|(h, _)| h)
            .unwrap_or(h)
            .to_string()
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// `{"status":"error","msg":...}` (the API's error shape).
pub(crate) fn api_error(status: StatusCode, msg: &str) -> Response {
    json_response(status, json!({"status": "error", "msg": msg}))
}

/// Maps a core failure of an API endpoint to a response (logging server faults).
pub(crate) fn core_error(e: Error) -> Response {
    match &e {
        Error::Invalid {
            field, accepted, ..
        } => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"status": "error", "msg": e.to_string(), "errors": {field_name(field): accepted}}),
        ),
        Error::NotFound { .. } => api_error(StatusCode::NOT_FOUND, &e.without_step()),
        Error::Conflict(m) => api_error(StatusCode::CONFLICT, m),
        Error::Refused(m) | Error::Reused(m) => api_error(StatusCode::UNPROCESSABLE_ENTITY, m),
        Error::Blocked { .. } => api_error(StatusCode::UNPROCESSABLE_ENTITY, &e.without_step()),
        Error::PermissionDenied(_) | Error::NotOperator { .. } => {
            api_error(StatusCode::FORBIDDEN, "permission denied")
        }
        Error::Environment(_) | Error::MasterKey(_) | Error::Database(_) => {
            tracing::error!(error = %e, "request failed");
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is temporarily unavailable",
            )
        }
    }
}

/// The request field a core validation error names.
pub(crate) fn field_name(f: &str) -> &str {
    match f {
        "station name" => "station",
        "EU VAT id" => "euVatId",
        "registration number" => "rn",
        "country code" => "countryCode",
        f => f,
    }
}

/// Adds `Cache-Control: no-store` (token responses, RFC 6749 §5.1).
pub(crate) fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Gives an error response without a JSON or HTML body one in the endpoint's shape,
/// keeping its status and headers (`Allow`, `Retry-After`, …).
fn json_error_body(path: &str, res: Response) -> Response {
    let typed = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if typed {
        return res;
    }
    let status = res.status();
    let msg = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this endpoint does not accept that method (see Allow)".to_string()
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {BODY_LIMIT} bytes")
        }
        StatusCode::REQUEST_TIMEOUT => "the request took too long".to_string(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let (mut parts, _) = res.into_parts();
    let fresh = error_for(path, status, &msg);
    parts.headers.remove(header::CONTENT_LENGTH);
    let (fresh_parts, body) = fresh.into_parts();
    for (k, v) in fresh_parts.headers.iter() {
        parts.headers.insert(k.clone(), v.clone());
    }
    Response::from_parts(parts, body)
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}))
}

async fn not_found() -> Response {
    api_error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// The token endpoint and its aliases, introspection and revocation: their errors
/// take RFC 6749's shape (`error`, `error_description`); the rest the API's.
fn oauth_path(path: &str) -> bool {
    matches!(
        path,
        "/auth/token"
            | "/api/auth/token"
            | "/authorization/token"
            | "/oauth/introspect"
            | "/oauth/revoke"
    )
}

/// An error of `status` in the shape of the endpoint at `path`.
fn error_for(path: &str, status: StatusCode, msg: &str) -> Response {
    if oauth_path(path) {
        let code = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request"
        };
        json_response(status, json!({"error": code, "error_description": msg}))
    } else {
        api_error(status, msg)
    }
}

/// What makes a request ambiguous before any endpoint reads it: its `Host` (see
/// [`host_problem`]), or two `Authorization` headers (not a list header, RFC 9110
/// §11.6.2; which credentials would count? RFC 6750 §3.1 makes more than one way of
/// sending a token `invalid_request`).
fn header_problem(req: &Request) -> Option<&'static str> {
    if req
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Some(TWO_AUTHORIZATIONS);
    }
    host_problem(req)
}

const TWO_AUTHORIZATIONS: &str = "more than one Authorization header";

/// The `Host` of a request, as RFC 9112 §3.2 has it: exactly one, and the same as the
/// request target's authority when the target is in absolute form. Anything else is
/// ambiguous about which domain the request is for, so it is refused.
fn host_problem(req: &Request) -> Option<&'static str> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Some("more than one Host header");
    }
    // RFC 9112 §3.2: a Host that is not a host[:port] (spaces, non-ASCII, userinfo)
    // is refused like a missing one; an empty one is allowed (a target without an
    // authority), and names no domain.
    let valid = |h: &axum::http::HeaderValue| {
        h.to_str().is_ok_and(|s| {
            s.is_empty()
                || (!s.contains('@')
                    && axum::http::uri::Authority::try_from(s).is_ok_and(|a| {
                        // A port, when given, is 1–65535 (RFC 3986 §3.2.3 allows any
                        // digits; no socket has port 0 or 99999).
                        match a.as_str().get(a.host().len()..) {
                            Some("") => true,
                            Some(p) => p
                                .strip_prefix(':')
                                .and_then(|p| p.parse::<u16>().ok())
                                .is_some_and(|p| p > 0),
                            None => false,
                        }
                    }))
        })
    };
    match (host, req.uri().authority()) {
        (None, None) if req.version() == axum::http::Version::HTTP_11 => {
            Some("the Host header is missing")
        }
        (Some(h), _) if !valid(h) => Some("the Host header is not a host[:port]"),
        (Some(h), Some(a)) if !h.as_bytes().eq_ignore_ascii_case(a.as_str().as_bytes()) => {
            Some("the Host header and the request target name different hosts")
        }
        _ => None,
    }
}

/// The outermost layer. One structured log line per request: method, path (never the
/// query: it may carry codes or ids), status, latency, peer; no headers, no bodies,
/// so no secrets. Refuses an ambiguous `Host` or `Authorization`, and gives the bare errors of the layers
/// and of routing (405, 408, 413, …) a JSON body in the endpoint's shape, so a client
/// never has to parse plain text.
async fn log_requests(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let res = match header_problem(&req) {
        // The protected resource's 400 carries its challenge (RFC 6750 §3).
        Some(why @ TWO_AUTHORIZATIONS) if path.starts_with("/api/v1/") => {
            api::malformed_bearer(why)
        }
        Some(why) => error_for(&path, StatusCode::BAD_REQUEST, why),
        None => next.run(req).await,
    };
    let res = if res.status().is_client_error() || res.status().is_server_error() {
        json_error_body(&path, res)
    } else {
        res
    };
    tracing::info!(
        target: "keyward::access",
        %method,
        path = %path,
        status = res.status().as_u16(),
        micros = start.elapsed().as_micros() as u64,
        peer = %peer.ip(),
    );
    res
}

pub(crate) fn router(app: App) -> Router {
    use tower_http::limit::RequestBodyLimitLayer;
    use tower_http::timeout::TimeoutLayer;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route(
            "/api/auth/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/auth/token", post(oauth::token))
        .route("/api/auth/token", post(oauth::token))
        .route("/authorization/token", post(oauth::token))
        .route("/oauth/introspect", post(oauth::introspect))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/consumer/login", post(api::login))
        .route("/api/auth/renew", post(api::renew))
        .route("/signup", post(api::signup))
        .route(
            "/api/v1/stations",
            get(api::stations).post(api::station_create),
        )
        .route("/api/v1/tokens", get(api::tokens).post(api::token_create))
        .route("/api/v1/tokens/{jti}", delete(api::token_revoke))
        .route("/api/lookup", get(api::lookup))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(15),
        ))
        .layer(middleware::from_fn(log_requests))
        .with_state(app)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Runs the token service until SIGTERM or Ctrl-C.
pub async fn run(kw: Keyward, opts: ServeOptions) -> Result<()> {
    // Log lines are written by a thread of their own, so a request does not wait for
    // a write to stderr (one access line per request); lossless: when that thread
    // falls behind, requests wait rather than lines being dropped. The guard flushes
    // what is left when `run` returns.
    let (log_writer, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(log_writer)
        // Colour only on a terminal, and never with NO_COLOR: log files stay plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .try_init();
    let svc = TokenService::start(kw.clone()).await?;
    let recorder_stopped = svc.stopped();
    if let Some(d) = &opts.domain
        && svc.domain_id(d).is_none()
    {
        return Err(Error::not_found_hint(
            "domain",
            d,
            "add it with `keyward domain add NAME` first",
        ));
    }
    let verifier = Arc::new(Verifier::new(kw.clone()).await?);
    let limits = limit::Limits::new(&svc.settings());
    let app = App(Arc::new(Inner {
        svc,
        verifier,
        limits: RwLock::new(Arc::new(limits)),
        opts: opts.clone(),
        last_key_reload: AtomicI64::new(0),
    }));
    // Background refresh: revocations every 500 ms (a revocation anywhere is seen
    // within a second), settings, domains and signing keys every 2 s.
    let bg = app.clone();
    let ticker = tokio::spawn(async move {
        let mut n: u64 = 0;
        let mut iv = tokio::time::interval(Duration::from_millis(500));
        loop {
            iv.tick().await;
            if let Err(e) = bg.verifier.refresh().await {
                tracing::warn!(error = %e, "refreshing the revocation view failed");
            }
            n += 1;
            if n.is_multiple_of(4) {
                match bg.svc.tick().await {
                    Ok(keys_changed) => {
                        if keys_changed && let Err(e) = bg.verifier.reload_keys().await {
                            tracing::warn!(error = %e, "reloading signing keys failed");
                        }
                        let s = bg.svc.settings();
                        let cur = bg.limits.read().expect("lock").clone();
                        if cur.differs(&s) {
                            *bg.limits.write().expect("lock") = Arc::new(limit::Limits::new(&s));
                        } else {
                            cur.retain_recent();
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "refreshing settings failed"),
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(|e| Error::Environment(format!("cannot listen on {}: {e}", opts.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Environment(e.to_string()))?;
    tracing::info!(%addr, domain = ?opts.domain, trust_proxy = opts.trust_proxy, "keyward serve listening");
    eprintln!("keyward serve: listening on http://{addr}");
    let issuer = app.svc.settings().issuer.clone();
    if issuer == DEFAULT_ISSUER && format!("http://{addr}") != DEFAULT_ISSUER {
        // Tokens would name an issuer nobody serves, and the discovery document
        // would send clients to it.
        tracing::warn!(%issuer, %addr, "the issuer is the default, not this server's address");
        eprintln!(
            "keyward serve: warning: the issuer is still the default {issuer}, not where this \
             server listens: tokens carry it as `iss`, and /.well-known/oauth-authorization-server \
             sends clients there. Set the URL clients reach this server at: \
             keyward config set issuer https://auth.example.com"
        );
    }
    serve_http(listener, router(app), shutdown_signal()).await;
    ticker.abort();
    let _ = ticker.await;
    // With the last request and the ticker gone, so is the service: wait for its
    // recorder to finish and close its connection before the pool closes.
    if tokio::time::timeout(Duration::from_secs(10), recorder_stopped)
        .await
        .is_err()
    {
        tracing::warn!("the token recorder did not stop within 10 s");
    }
    // Leave no grant in the token journal (SQLite): move it into the token tables.
    if let Err(e) = kw.settle_tokens().await {
        tracing::warn!(error = %e, "settling the token journal failed");
    }
    kw.db().close().await;
    Ok(())
}

/// How long a connection may take to send a request's head, counted from when the
/// server starts waiting for it: a client that trickles its headers (slowloris), or a
/// connection left idle between requests, is closed after this. Bodies and handlers
/// are bounded by the router's request timeout.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The largest request head (request line and headers) accepted, in bytes, as large as
/// a body may be. (Bearer tokens over `token::MAX_TOKEN_LEN`, 16 KiB, still get the
/// API's 401 from the verifier, which refuses them by their length.)
const MAX_HEAD: usize = 64 * 1024;

/// How long shutdown waits for requests in flight before closing what is left.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then lets the requests
/// in flight finish (idle keep-alive connections close at once). Written out instead of
/// `axum::serve`, which sets no timer: without one, hyper enforces no header read
/// timeout, and a connection that never sends a full request stays open for good.
async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // Request heads over 64 KiB are refused (431) instead of buffered (hyper's buffer
    // grows to ~400 KiB a connection otherwise); a genuine bearer token takes under
    // 2 KiB.
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEAD);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                // A connection reset before it was accepted: only that one is lost.
                Err(e) if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionRefused
                ) => continue,
                Err(e) => {
                    // Out of file descriptors, say: keep serving the connections
                    // open, try again shortly.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection closed");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// Extracts state and peer in handlers.
pub(crate) type St = State<App>;
pub(crate) type Peer = ConnectInfo<SocketAddr>;

#[cfg(test)]
mod tests {
    use super::host_part;

    #[test]
    fn hosts() {
        assert_eq!(host_part("Free.Example.com:8080"), "free.example.com");
        assert_eq!(host_part("free.example.com."), "free.example.com");
        assert_eq!(host_part("[::1]:80"), "[::1]");
        assert_eq!(host_part("127.0.0.1"), "127.0.0.1");
    }
}
