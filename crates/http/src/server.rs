//! The connection loop (docs/security.md, "Limits and timeouts"): HTTP/1.1 over hyper
//! with a header-read timeout that also closes silent and idle keep-alive connections, a
//! write timeout for clients that stop reading their answers ([`WriteTimeout`]), a cap
//! on the request head's size, a cap on open connections, and a deadline for graceful
//! shutdown.
//!
//! hyper answers a request head it cannot take by itself (`431` for a head over the
//! limit, `414` for a URI over its own limit, `400` for one it cannot parse), with an
//! empty body; [`JsonErrors`] gives those answers the JSON body every other error has.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// The default time a connection has to send a whole request head, counted from its
/// opening or from the end of its previous answer: 15 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// The default time a write may make no progress (the client reads none of its answer)
/// before the connection is closed: 60 s, as nginx's `send_timeout`.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The default largest request head (request line and headers): 16 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 << 10;
/// The default most connections open at once: 512.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// The default time graceful shutdown waits for the requests in flight: 30 s.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The smallest request-head limit hyper takes.
const MIN_HEADER_BYTES: usize = 8 << 10;

/// Limits on connections (docs/security.md).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// A connection that has not sent a whole request head this long after it opened,
    /// or after its previous answer, is closed (slow headers, silent and idle keep-alive
    /// connections).
    pub header_timeout: Duration,
    /// A write to the connection that makes no progress this long (its client reads
    /// nothing) fails and the connection is closed; the clock restarts whenever a write
    /// makes progress, so a slow client that keeps reading is not cut.
    pub write_timeout: Duration,
    /// The largest request head, in bytes (at least 8 KiB); a bigger one is `431`.
    pub max_header_bytes: usize,
    /// The most connections served at once; one more is answered `503` and closed.
    pub max_connections: usize,
    /// After the shutdown signal, how long requests in flight may take; those still
    /// running then are dropped.
    pub shutdown_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// Open connections, for the metrics.
pub(crate) static OPEN_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets the
/// requests in flight finish for at most `limits.shutdown_timeout`, and returns.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    let head = limits.max_header_bytes.max(MIN_HEADER_BYTES);
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(head)
        // The read buffer holds the head while it arrives: a head that does not fit is
        // refused (431) without reading more of it.
        .max_buf_size(head.saturating_mul(2))
        // One buffer per write, so that hyper's own error answers can be recognised.
        .writev(false)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Reap finished connections so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream);
            continue;
        };
        stream.set_nodelay(true).ok();
        let builder = builder.clone();
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let write_timeout = limits.write_timeout;
        tasks.spawn(async move {
            let _permit = permit;
            OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app.clone();
                async move { app.call(req).await }
            });
            let conn = builder.serve_connection(
                TokioIo::new(JsonErrors::new(WriteTimeout::new(stream, write_timeout))),
                service,
            );
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
            OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "shutdown deadline passed; dropping the requests still in flight"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    Ok(())
}

/// Answers a connection over the limit `503` and closes it, without waiting for it.
fn refuse(stream: TcpStream) {
    let body = "{\"error\":\"too many connections; try again later\"}\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // A new connection's send buffer is empty: one non-blocking write is enough, and a
    // client that does not read cannot hold anything.
    let _ = stream.try_write(answer.as_bytes());
}

/// A connection whose writes fail with [`io::ErrorKind::TimedOut`] once one has been
/// waiting `timeout` without the stream taking a byte (its send buffer stays full: the
/// client reads nothing). hyper's header-read timeout does not run while hyper is
/// blocked writing, so without this a client that pipelines requests and never reads
/// their answers would hold its connection and buffers forever.
///
/// The clock starts when a write, flush or shutdown is first told to wait, and stops at
/// every one that completes: a slow client that keeps reading is not cut. (Linux wakes
/// a blocked writer once about a third of the socket's send buffer is free: a client
/// must read that much per timeout.)
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write waits.
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration) -> WriteTimeout<S> {
        WriteTimeout {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }

    /// `poll` is what the stream answered a write, flush or shutdown: passed on when
    /// ready (stopping the clock), else the clock is started if it was not running, and
    /// a wait past `timeout` becomes `TimedOut`.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.armed = false;
            return poll;
        }
        if !self.armed {
            self.armed = true;
            self.sleep.as_mut().reset(Instant::now() + self.timeout);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} s (write timeout)",
                    self.timeout.as_secs_f64()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, poll)
    }
}

/// A connection whose hyper-written error answers (a head without a body, status 400,
/// 414 or 431) are replaced by the same status with a JSON body and `connection: close`;
/// hyper closes the connection after them.
struct JsonErrors<S> {
    inner: S,
    /// Bytes to write before anything else.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonErrors<S> {
    fn new(inner: S) -> JsonErrors<S> {
        JsonErrors {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The JSON answer standing for hyper's own answer `buf`, if `buf` is one.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    let (status, error) = if buf.starts_with(b"HTTP/1.1 431 ") {
        (
            "431 Request Header Fields Too Large",
            "the request head (request line and headers) is over the limit",
        )
    } else if buf.starts_with(b"HTTP/1.1 414 ") {
        ("414 URI Too Long", "the URI is over the limit")
    } else if buf.starts_with(b"HTTP/1.1 400 ") {
        ("400 Bad Request", "the request head is not valid HTTP/1.1")
    } else {
        return None;
    };
    // hyper's own answer is a head alone, with no body; ours always have one.
    let head = std::str::from_utf8(buf).ok()?;
    if !head.ends_with("\r\n\r\n") || !head.to_ascii_lowercase().contains("content-length: 0\r\n") {
        return None;
    }
    let body = format!("{}\n", serde_json::json!({ "error": error }));
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    /// Writes what is pending; ready once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = match Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        if let Some(json) = replacement(buf) {
            this.pending = json;
            // The replacement stands for all of `buf`; it is written by the next write,
            // flush or shutdown.
            let _ = this.poll_pending(cx);
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn only_hyper_s_bodiless_error_heads_are_replaced() {
        let hyper =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let json = String::from_utf8(replacement(hyper).unwrap()).unwrap();
        assert!(json.starts_with("HTTP/1.1 431 "), "{json}");
        assert!(json.contains("content-type: application/json"), "{json}");
        assert!(json.ends_with("\"}\n"), "{json}");
        // Our own answers carry a body: left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{\"error\":1}\n";
        assert!(replacement(ours).is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
