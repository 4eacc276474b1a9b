//! Connection hygiene: the accept loop that serves the router over HTTP/1.1 with a cap on
//! open connections and a deadline for every request head.
//!
//! A client that opens connections and sends nothing, or a header a byte at a time
//! (slowloris), is cut off after [`Limits::header_read_timeout`]. The same timer runs
//! while a kept-alive connection waits for its next request, so it is also the idle
//! keep-alive timeout. A body that stops arriving is answered `408` by the body guard
//! (`body.rs`) after [`Limits::body_read_timeout`]. A client that stops reading its
//! answer is cut off after [`Limits::write_timeout`] of a stalled write, so it cannot
//! hold a connection slot for ever. At [`Limits::max_connections`] open
//! connections the server stops accepting until one closes; the rest wait in the
//! kernel's backlog rather than costing a file descriptor each.

use crate::AppState;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// What one connection and one request may take. All are set by `tally serve` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a whole request head; also how long an idle kept-alive connection
    /// stays open.
    pub header_read_timeout: Duration,
    /// Time to send a whole request body, from the first read of it.
    pub body_read_timeout: Duration,
    /// Time for the whole request; past it `503 timeout`.
    pub request_timeout: Duration,
    /// Time an answer may wait for a client that does not read it.
    pub write_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes, then lets the requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    let app = crate::router(state);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {} // reap the finished
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait
                    // a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = stream;
        let _ = stream.set_nodelay(true);
        // The peer's address, for the sign-in forms' rate limits.
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                req
            },
        ));
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let io = Stalls {
                io: stream,
                limit: limits.write_timeout,
                stalled: None,
            };
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|stopping| *stopping).await.map(|_| ());
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopping => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is done: taking them all means all are.
    // Requests in flight get their own time limit and a little more, then we go.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let grace = limits.request_timeout + limits.write_timeout;
    if tokio::time::timeout(grace, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("some connections were still open at shutdown; closing them");
        connections.shutdown().await;
    }
    Ok(())
}

/// A connection that fails an answer the client does not take within `limit` (it stopped
/// reading, or reads a trickle), so hyper closes it. The timer starts at the first write
/// that has to wait and stops only when a flush has delivered everything: a reader that
/// takes a segment now and then does not reset it.
struct Stalls {
    io: tokio::net::TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stalls {
    /// Passes on a write or flush that is done (a finished flush stops the timer); one
    /// that has to wait arms the timer, and fails once it has run out.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
        flushed: bool,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                if flushed {
                    self.stalled = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if timer.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading its answer",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl AsyncRead for Stalls {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stalls {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, poll, false)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, poll, false)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, poll, true)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
