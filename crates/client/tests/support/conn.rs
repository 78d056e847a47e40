//! The fake server's side of one connection: transports (TCP, TLS, WebSocket), the
//! handshake, and the requests it serves.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use magpie_proto::codec::{Outgoing, encode_prefixed};
use magpie_proto::convert::text_content;
use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, FrameCodec, decode_frame, encode_frame, error_frame, frame};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::codec::Framed;

use super::{
    Conn, Ctl, Mode, Shared, State, append, conv_of, fan_out, groups, lists, ops, people, rooms,
};

// ---- transports ------------------------------------------------------------------------

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

enum Wire {
    Stream(Framed<Box<dyn Io>, FrameCodec>),
    Ws(WebSocketStream<Box<dyn Io>>),
}

impl Wire {
    async fn recv(&mut self) -> Option<Frame> {
        match self {
            Wire::Stream(f) => f.next().await?.ok(),
            Wire::Ws(ws) => loop {
                match ws.next().await?.ok()? {
                    WsMessage::Binary(b) => return decode_frame(&b, 1 << 20).ok(),
                    WsMessage::Close(_) => return None,
                    _ => continue,
                }
            },
        }
    }

    async fn send(&mut self, f: Frame) -> bool {
        match self {
            Wire::Stream(s) => s.send(Outgoing::Frame(f)).await.is_ok(),
            Wire::Ws(ws) => ws.send(WsMessage::Binary(encode_frame(&f))).await.is_ok(),
        }
    }

    /// Writes the first half of `f` and closes the connection.
    async fn send_half_and_close(self, f: Frame) {
        match self {
            Wire::Stream(s) => {
                let mut io = s.into_inner();
                let mut buf = BytesMut::new();
                encode_prefixed(&f, &mut buf);
                let half: Bytes = buf.freeze().slice(..buf_half(&f));
                let _ = io.write_all(&half).await;
                let _ = io.flush().await;
                let _ = io.shutdown().await;
            }
            Wire::Ws(mut ws) => {
                let _ = ws.close(None).await;
            }
        }
    }
}

fn buf_half(f: &Frame) -> usize {
    (4 + encode_frame(f).len()) / 2
}

pub(super) fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone().into()], key)
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert_der)
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    mode: Mode,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        shared.lock().accepted += 1;
        shared.bump();
        let tls = tls.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Some(wire) = open(tcp, mode, tls).await {
                serve(wire, shared).await;
            }
        });
    }
}

async fn open(tcp: TcpStream, mode: Mode, tls: Option<tokio_rustls::TlsAcceptor>) -> Option<Wire> {
    let io: Box<dyn Io> = match tls {
        Some(acceptor) => Box::new(acceptor.accept(tcp).await.ok()?),
        None => Box::new(tcp),
    };
    Some(match mode {
        Mode::Tcp | Mode::Tls => Wire::Stream(Framed::new(io, FrameCodec::new(1 << 20))),
        Mode::Ws | Mode::Wss => Wire::Ws(tokio_tungstenite::accept_async(io).await.ok()?),
    })
}

// ---- one connection --------------------------------------------------------------------

async fn serve(mut wire: Wire, shared: Arc<Shared>) {
    let Some(first) = wire.recv().await else {
        return;
    };
    let Some(Body::Hello(hello)) = first.body else {
        wire.send(error_frame(0, ErrorCode::AuthRequired, "hello first"))
            .await;
        return;
    };
    let (user, device) = match hello.token.split_once('/') {
        Some((u, d)) => (u.to_owned(), d.to_owned()),
        None => (hello.token.clone(), "dev1".to_owned()),
    };
    let refusal = {
        let mut st = shared.lock();
        st.tokens.push(hello.token.clone());
        if st.refuse_next > 0 {
            st.refuse_next -= 1;
            Some(None)
        } else if hello.token == "expired" {
            Some(Some(ErrorCode::TokenExpired))
        } else if hello.token == "bad" {
            Some(Some(ErrorCode::Unauthenticated))
        } else {
            None
        }
    };
    shared.bump();
    match refusal {
        Some(None) => return,
        Some(Some(code)) => {
            wire.send(error_frame(first.request_id, code, "refused"))
                .await;
            return;
        }
        None => {}
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (conn_id, heartbeat_ms) = {
        let mut st = shared.lock();
        st.next_conn += 1;
        let id = st.next_conn;
        st.conns.insert(
            id,
            Conn {
                user: user.clone(),
                tx,
            },
        );
        st.hellos_ok += 1;
        (id, st.heartbeat_ms)
    };
    let ok = pb::HelloOk {
        protocol_version: magpie_proto::PROTOCOL_VERSION,
        app_id: "demo".into(),
        user_id: user.clone(),
        device_id: device.clone(),
        server_time_ms: 1,
        heartbeat_interval_ms: heartbeat_ms,
        max_message_bytes: 4096,
    };
    let sent = wire.send(frame(first.request_id, Body::HelloOk(ok))).await;
    shared.bump();
    if sent {
        let who = Who {
            conn: conn_id,
            user,
            device,
        };
        run(wire, &mut rx, &shared, &who).await;
    }
    {
        let mut st = shared.lock();
        st.conns.remove(&conn_id);
        rooms::disconnect(&mut st, conn_id);
    }
    shared.bump();
}

pub(super) struct Who {
    pub(super) conn: u64,
    pub(super) user: String,
    pub(super) device: String,
}

pub(super) enum Next {
    Continue,
    Close,
    CutAfter(Box<Frame>),
}

async fn run(mut wire: Wire, rx: &mut mpsc::UnboundedReceiver<Ctl>, shared: &Shared, who: &Who) {
    loop {
        tokio::select! {
            f = wire.recv() => {
                let Some(f) = f else { return };
                let (replies, next) = handle(f, shared, who);
                shared.bump();
                for r in replies {
                    if !wire.send(r).await {
                        return;
                    }
                }
                match next {
                    Next::Continue => {}
                    Next::Close => return,
                    Next::CutAfter(f) => {
                        // Remove the connection first so nothing else is routed to it.
                        shared.lock().conns.remove(&who.conn);
                        wire.send_half_and_close(*f).await;
                        return;
                    }
                }
            }
            ctl = rx.recv() => match ctl {
                Some(Ctl::Frame(f)) => {
                    if !wire.send(*f).await {
                        return;
                    }
                }
                Some(Ctl::Close) | None => return,
            }
        }
    }
}

fn handle(f: Frame, shared: &Shared, who: &Who) -> (Vec<Frame>, Next) {
    let id = f.request_id;
    let Some(body) = f.body else {
        return (
            vec![error_frame(0, ErrorCode::BadFrame, "empty")],
            Next::Close,
        );
    };
    let mut st = shared.lock();
    match body {
        Body::Ping(p) => {
            st.pings += 1;
            if st.silent {
                return (vec![], Next::Continue);
            }
            let pong = Body::Pong(pb::Pong {
                client_time_ms: p.client_time_ms,
                server_time_ms: 2,
            });
            (vec![frame(id, pong)], Next::Continue)
        }
        Body::Send(req) => on_send(&mut st, id, req, who),
        Body::PushAck(a) => {
            for d in a.delivered {
                st.push_acks.push((d.conversation, d.seq));
            }
            (vec![], Next::Continue)
        }
        Body::ListConversations(req) => (
            vec![lists::list(&mut st, id, req, &who.user)],
            Next::Continue,
        ),
        Body::Pull(req) => (
            vec![lists::pull(&mut st, id, req, &who.user)],
            Next::Continue,
        ),
        Body::MarkRead(req) => (
            vec![lists::mark_read(&mut st, id, req, &who.user, who.conn)],
            Next::Continue,
        ),
        Body::ConversationSettings(req) => (
            vec![lists::settings(&mut st, id, req, &who.user)],
            Next::Continue,
        ),
        Body::Group(req) => (
            vec![groups::on_group(&mut st, id, req, &who.user)],
            Next::Continue,
        ),
        Body::MessageOp(req) => ops::on_message_op(&mut st, id, req, who),
        Body::DeleteForMe(req) => (
            vec![ops::delete_for_me(&mut st, id, req, who)],
            Next::Continue,
        ),
        Body::Typing(req) => {
            people::typing(&mut st, req, &who.user);
            (vec![], Next::Continue)
        }
        Body::SubscribePresence(req) => (
            vec![people::subscribe_presence(&mut st, id, req, &who.user)],
            Next::Continue,
        ),
        Body::Social(req) => (
            vec![people::on_social(&mut st, id, req, &who.user)],
            Next::Continue,
        ),
        Body::Room(req) => (vec![rooms::on_room(&mut st, id, req, who)], Next::Continue),
        Body::RoomSend(req) => rooms::on_send(&mut st, id, req, who),
        Body::RoomAck(ack) => {
            rooms::on_ack(&mut st, ack, who);
            (vec![], Next::Continue)
        }
        Body::History(req) => {
            let log = st.logs.get(&req.conversation).cloned().unwrap_or_default();
            let before = if req.before_seq == 0 {
                u64::MAX
            } else {
                req.before_seq
            };
            let older: Vec<pb::Message> =
                log.into_iter().rev().filter(|m| m.seq < before).collect();
            let limit = req.limit.max(1) as usize;
            let result = pb::HistoryResult {
                conversation: req.conversation,
                has_more: older.len() > limit,
                messages: older.into_iter().take(limit).collect(),
            };
            (vec![frame(id, Body::HistoryResult(result))], Next::Continue)
        }
        _ => (
            vec![error_frame(
                id,
                ErrorCode::InvalidArgument,
                "unexpected frame",
            )],
            Next::Continue,
        ),
    }
}

fn on_send(st: &mut State, id: u64, req: pb::SendRequest, who: &Who) -> (Vec<Frame>, Next) {
    st.sends.push((who.user.clone(), req.client_msg_id.clone()));
    if !st.fail_next_sends.is_empty() {
        let code = st.fail_next_sends.remove(0);
        return (vec![error_frame(id, code, "injected")], Next::Continue);
    }
    let refuse = |code, message| (vec![error_frame(id, code, message)], Next::Continue);
    let conv = match &req.to {
        Some(pb::send_request::To::User(to)) if to == "nobody" => {
            return refuse(ErrorCode::NotFound, "no such user");
        }
        Some(pb::send_request::To::User(to)) => {
            if st.blocks.contains(&(to.clone(), who.user.clone())) {
                return refuse(ErrorCode::Blocked, "blocked");
            }
            conv_of(&who.user, to)
        }
        Some(pb::send_request::To::Group(g)) => {
            if !st
                .groups
                .get(g)
                .is_some_and(|g| g.members.contains(&who.user))
            {
                return refuse(ErrorCode::Forbidden, "not a member");
            }
            format!("g:{g}")
        }
        None => return refuse(ErrorCode::InvalidArgument, "no recipient"),
    };
    let key = (who.user.clone(), req.client_msg_id.clone());
    if let Some(original) = st.dedup.get(&key) {
        let mut ack = original.clone();
        ack.duplicate = true;
        return (vec![frame(id, Body::SendAck(ack))], Next::Continue);
    }
    let entry = pb::Message {
        from_user: who.user.clone(),
        from_device: who.device.clone(),
        client_msg_id: req.client_msg_id.clone(),
        content: Some(req.content.unwrap_or_else(|| text_content(""))),
        mentions: req.mentions,
        mention_all: req.mention_all,
        reply_to: req.reply_to,
        ..Default::default()
    };
    let m = append(st, &conv, entry);
    // Sending marks the conversation read up to the message.
    st.reads.insert((who.user.clone(), conv), m.seq);
    let ack = pb::SendAck {
        client_msg_id: req.client_msg_id,
        msg_id: m.msg_id,
        conversation: m.conversation.clone(),
        seq: m.seq,
        server_time_ms: m.server_time_ms,
        duplicate: false,
    };
    st.dedup.insert(key, ack.clone());
    // Push to everyone who may see it but this connection (the ack serves it).
    fan_out(st, &m, Some(who.conn));
    let ack = frame(id, Body::SendAck(ack));
    if st.cut_next_ack {
        st.cut_next_ack = false;
        return (vec![], Next::CutAfter(Box::new(ack)));
    }
    (vec![ack], Next::Continue)
}
