//! A manual accept loop so a handler can drop its TCP connection without writing a response.
use std::sync::Arc;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tower_service::Service;

/// Put in every request's extensions; firing it closes the connection the request came on.
#[derive(Clone, Default)]
pub struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    /// Closes the connection and never returns: the request future is dropped with it.
    pub async fn drop_connection(&self) -> ! {
        self.0.notify_one();
        std::future::pending().await
    }
}

pub async fn serve(listener: TcpListener, app: Router) {
    // Owning the connection tasks here means aborting this task closes every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, app.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "simulator accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, app: Router) {
    let kill = ConnectionKill::default();
    let per_request_kill = kill.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(per_request_kill.clone());
        let mut router = app.clone();
        async move { router.call(request).await }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "simulator connection ended with an error");
            }
        }
        () = kill.0.notified() => {}
    }
}
