//! HTTP: `/` (landing page), the telemetry path, `/-/healthy`, `/-/ready`. GET and HEAD only.
//! A scrape encodes the current snapshot; it never calls AWS.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{
    HeaderValue, ACCEPT, ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::state::Shared;
use crate::web::{Auth, WebConfigWatcher};

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a client may take to send its request headers (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Handler {
    pub shared: Arc<Shared>,
    pub registry: Registry,
    pub telemetry_path: String,
    /// `--web.max-requests`: `None` for no limit.
    pub max_requests: Option<Arc<Semaphore>>,
    /// `--web.config.file`: TLS, basic auth, extra headers.
    pub web: Option<Arc<WebConfigWatcher>>,
    /// The last encoded body per format, with the state generation it shows.
    pub cache: BodyCache,
}

/// Scrapes between two refreshes see the same state, so its encoding is kept and reused: the
/// generation of [`Shared`] tells when it is stale.
#[derive(Debug, Default)]
pub struct BodyCache {
    bodies: Mutex<[Option<(u64, Bytes)>; 2]>,
}

impl BodyCache {
    fn get_or_encode(&self, app: &Handler, format: Format) -> Result<Bytes, std::fmt::Error> {
        let slot = format as usize;
        // Read the generation before encoding: a change during the encode makes the stored body
        // look stale at once, never the reverse.
        let generation = app.shared.generation();
        if let Some((g, body)) = &self.bodies.lock().unwrap_or_else(PoisonError::into_inner)[slot] {
            if *g == generation {
                return Ok(body.clone());
            }
        }
        let body = Bytes::from(encode(&app.registry, format)?);
        self.bodies.lock().unwrap_or_else(PoisonError::into_inner)[slot] =
            Some((generation, body.clone()));
        Ok(body)
    }
}

impl Handler {
    /// Answers a request. `--web.max-requests` bounds the requests in flight: the permit is
    /// taken first and held by the response body until it is written, and a request over the
    /// limit gets 503 at once. The probes are exempt: a kubelet must get its answer while the
    /// exporter is under load or attack, and they cost nothing.
    pub async fn respond(&self, req: &Request<Incoming>) -> Response<Body> {
        let probe = matches!(req.uri().path(), "/-/healthy" | "/-/ready");
        let permit = match &self.max_requests {
            Some(limit) if !probe => match Arc::clone(limit).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return too_many_requests().map(Body::from),
            },
            _ => None,
        };
        let resp = self.authorized(req, probe).await;
        resp.map(|full| Body {
            full,
            _permit: permit,
        })
    }

    async fn authorized(&self, req: &Request<Incoming>, probe: bool) -> Response<Full<Bytes>> {
        let Some(watcher) = &self.web else {
            return handle(self, req);
        };
        let config = watcher.current();
        // Probes stay open: a kubelet has no password. Everything else follows basic auth.
        let authorization = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let mut resp = if probe || watcher.authorize(&config, authorization).await == Auth::Allowed
        {
            handle(self, req)
        } else {
            unauthorized()
        };
        for (name, value) in &config.headers {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
        resp
    }
}

/// A response body that holds the request's `--web.max-requests` permit until hyper has written
/// it and drops it.
#[derive(Debug)]
pub struct Body {
    full: Full<Bytes>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl From<Full<Bytes>> for Body {
    fn from(full: Full<Bytes>) -> Self {
        Self {
            full,
            _permit: None,
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().full).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.full.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.full.size_hint()
    }
}

/// The same answer whether the user is unknown or the password wrong.
fn unauthorized() -> Response<Full<Bytes>> {
    let mut resp = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"iam-mfa-exporter\""),
    );
    resp
}

fn too_many_requests() -> Response<Full<Bytes>> {
    let mut resp = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many requests at once (--web.max-requests)\n",
    );
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The exposition formats we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    PrometheusText,
}

impl Format {
    /// OpenMetrics when the client prefers it (by q-value) to text/plain, else the 0.0.4 text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };
        let (mut openmetrics, mut plain) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "*/*" | "text/*" => plain = plain.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= plain {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::PrometheusText => PROMETHEUS_TEXT,
        }
    }
}

/// Encodes the registry in a format.
pub fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut body = String::with_capacity(16 * 1024);
    match format {
        Format::OpenMetrics => text::encode(&mut body, registry)?,
        Format::PrometheusText => prometheus_text::encode(&mut body, registry)?,
    }
    Ok(body)
}

/// Answers one request.
pub fn handle(app: &Handler, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let known =
        path == "/" || path == app.telemetry_path || path == "/-/healthy" || path == "/-/ready";
    if !known {
        return plain(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match path {
        "/-/healthy" => plain(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if app.shared.is_ready() => plain(StatusCode::OK, "Ready.\n"),
        "/-/ready" => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: no successful refresh yet.\n",
        ),
        "/" => {
            let page = LANDING_PAGE.replace("{{path}}", &app.telemetry_path);
            let mut resp = Response::new(Full::from(page));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            resp
        }
        _ => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            match app.cache.get_or_encode(app, format) {
                Ok(body) => {
                    let mut resp = Response::new(Full::from(body));
                    resp.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(format.content_type()),
                    );
                    resp
                }
                Err(_) => {
                    tracing::error!("encoding metrics failed");
                    plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "encoding metrics failed\n",
                    )
                }
            }
        }
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Binds `--web.listen-address`. ":PORT" means every interface, IPv6 and IPv4 alike (one
/// dual-stack socket, as Go exporters listen), falling back to IPv4 alone where the host has no
/// IPv6.
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    let Some(port) = address.strip_prefix(':') else {
        return TcpListener::bind(address).await;
    };
    let port: u16 = port.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad port in {address:?}"),
        )
    })?;
    match dual_stack(port) {
        Ok(listener) => Ok(listener),
        // Only a host without IPv6 falls back; any other error (port in use, no permission) is
        // the caller's to see.
        Err(error)
            if matches!(
                error.raw_os_error(),
                Some(libc_errno::EAFNOSUPPORT | libc_errno::EADDRNOTAVAIL)
            ) =>
        {
            tracing::warn!(%error, "no IPv6 on this host; listening on IPv4 only");
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await
        }
        Err(error) => Err(error),
    }
}

/// Linux errno values for "this address family cannot be used here".
mod libc_errno {
    pub const EAFNOSUPPORT: i32 = 97;
    pub const EADDRNOTAVAIL: i32 = 99;
}

fn dual_stack(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Serves until `shutdown` completes, then lets requests in flight finish (bounded).
pub async fn serve(
    listener: TcpListener,
    app: Arc<Handler>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // e.g. EMFILE: back off briefly rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = Arc::clone(&app);
        let tls = app.web.as_ref().and_then(|w| w.current().tls.clone());
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.respond(&req).await) }
        });
        let http = http.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(tls) => {
                    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, accept).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after the shutdown grace period");
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}

/// The address actually bound (useful with port 0).
pub fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

const LANDING_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>IAM MFA Exporter</title></head>
<body>
<h1>IAM MFA Exporter</h1>
<p>Prometheus metrics on IAM MFA compliance, from the AWS IAM credential report.
The report is fetched in the background; a scrape reads the cached result.</p>
<ul>
<li><a href="{{path}}">Metrics</a></li>
<li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a> (ready after the first successful refresh)</li>
</ul>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::{bind, too_many_requests, Format};

    #[tokio::test]
    async fn colon_port_listens_on_ipv4_and_ipv6() {
        let listener = bind(":0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            for _ in 0..2 {
                let _ = listener.accept().await.unwrap();
            }
        });
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("IPv4");
        // Where the host has IPv6 at all (a loopback listener can be made), it must be served.
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            tokio::net::TcpStream::connect(("::1", port))
                .await
                .expect("IPv6");
        } else {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
        }
        accept.await.unwrap();
    }

    #[test]
    fn over_the_limit_is_503_with_retry_after() {
        let resp = too_many_requests();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
    }

    #[test]
    fn negotiation() {
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
        assert_eq!(Format::negotiate(Some("*/*")), Format::PrometheusText);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text; q=0.2, text/plain; q=0.9"
            )),
            Format::PrometheusText
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::PrometheusText
        );
    }
}
