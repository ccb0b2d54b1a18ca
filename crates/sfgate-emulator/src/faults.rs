//! Fault switches: how the emulator misbehaves on purpose, so tests can prove sfgate fails
//! closed on every kind of Salesforce trouble.

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone, Debug, PartialEq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Waits, then answers normally.
    Slow(Duration),
    /// 503 with an HTML body, as during Salesforce maintenance.
    ServerError,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Never answers (until the emulator shuts down).
    Hang,
    /// Breaks the connection instead of answering.
    CloseConnection,
}

/// Applies `fault`: `Some(response)` replaces the normal answer; `None` lets it through.
pub(crate) async fn apply(fault: &Fault, mut shutdown: watch::Receiver<bool>) -> Option<Response> {
    match fault {
        Fault::None => None,
        Fault::Slow(delay) => {
            tokio::time::sleep(*delay).await;
            None
        }
        Fault::ServerError => Some(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>Service Unavailable</h1><p>Salesforce is down for maintenance.</p></body></html>",
            )
                .into_response(),
        ),
        Fault::Garbage => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "<html>garbage \u{1}\u{2} not json",
            )
                .into_response(),
        ),
        Fault::Hang => {
            let _ = shutdown.wait_for(|stop| *stop).await;
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        Fault::CloseConnection => {
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "closed by fault switch"))
            });
            Some(
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(stream))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
            )
        }
    }
}

impl Fault {
    /// The control API's names: `none`, `slow`, `server_error`, `garbage`, `hang`, `close`.
    pub(crate) fn from_name(name: &str, delay: Duration) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "slow" => Self::Slow(delay),
            "server_error" => Self::ServerError,
            "garbage" => Self::Garbage,
            "hang" => Self::Hang,
            "close" => Self::CloseConnection,
            _ => return None,
        })
    }
}
