//! One connection attempt: fetch a token, connect, `Hello` → `HelloOk`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use magpie_proto::{Body, PROTOCOL_VERSION, pb};

use crate::error::ErrorCode;
use crate::transport::{Connector, FrameSink, FrameStream};
use crate::{ClientError, SessionInfo, TokenSource};

/// Request id of the Hello frame; session requests count up from the next one.
pub(crate) const HELLO_REQUEST_ID: u64 = 1;

/// An authenticated connection.
pub(crate) struct Established {
    pub(crate) sink: FrameSink,
    pub(crate) stream: FrameStream,
    pub(crate) session: SessionInfo,
    /// The token the server accepted.
    pub(crate) token: String,
}

/// Why an attempt failed, and the token it used (if it got that far).
pub(crate) struct Failed {
    pub(crate) error: ClientError,
    pub(crate) token: Option<String>,
}

/// What an attempt needs; owned, so that the attempt can run while the driver goes on.
pub(crate) struct Attempt {
    pub(crate) connector: Connector,
    pub(crate) token: TokenSource,
    /// A token the server refused as fatal; being handed it again means the provider has
    /// nothing better, and the client must stop.
    pub(crate) refused_token: Option<(String, ClientError)>,
    pub(crate) client_name: String,
    pub(crate) timeout: Duration,
}

impl Attempt {
    /// Runs the attempt.
    pub(crate) async fn run(self) -> Result<Established, Failed> {
        let token = self
            .token
            .fetch()
            .await
            .map_err(|error| Failed { error, token: None })?;
        if let Some((refused, error)) = &self.refused_token
            && *refused == token
        {
            return Err(Failed {
                error: error.clone(),
                token: Some(token),
            });
        }
        let hello = pb::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: token.clone(),
            client: self.client_name.clone(),
        };
        match tokio::time::timeout(self.timeout, hello_exchange(&self.connector, hello)).await {
            Ok(Ok((sink, stream, session))) => Ok(Established {
                sink,
                stream,
                session,
                token,
            }),
            Ok(Err(error)) => Err(Failed {
                error,
                token: Some(token),
            }),
            Err(_) => Err(Failed {
                error: ClientError::Connection("connection attempt timed out".into()),
                token: Some(token),
            }),
        }
    }
}

async fn hello_exchange(
    connector: &Connector,
    hello: pb::Hello,
) -> Result<(FrameSink, FrameStream, SessionInfo), ClientError> {
    let (mut sink, mut stream) = connector
        .connect()
        .await
        .map_err(|e| ClientError::Connection(e.to_string()))?;
    sink.send(magpie_proto::frame(HELLO_REQUEST_ID, Body::Hello(hello)))
        .await
        .map_err(|e| ClientError::Connection(e.to_string()))?;
    let reply = match stream.next().await {
        Some(Ok(frame)) => frame,
        Some(Err(e)) => return Err(ClientError::Connection(e.to_string())),
        None => {
            return Err(ClientError::Connection(
                "closed during the handshake".into(),
            ));
        }
    };
    match reply.body {
        Some(Body::HelloOk(ok)) => {
            // 0 means the field was left out; any other version than ours cannot work.
            if ok.protocol_version != 0 && ok.protocol_version != PROTOCOL_VERSION {
                return Err(ClientError::Rejected {
                    code: ErrorCode::UnsupportedVersion,
                    message: format!(
                        "server speaks protocol version {}, this client {PROTOCOL_VERSION}",
                        ok.protocol_version
                    ),
                    retry_after: None,
                });
            }
            let session = SessionInfo::from_pb(ok)
                .map_err(|e| ClientError::Protocol(format!("bad HelloOk: {e}")))?;
            Ok((sink, stream, session))
        }
        Some(Body::Error(e)) => Err(ClientError::rejected(&e)),
        _ => Err(ClientError::Protocol("expected HelloOk".into())),
    }
}
