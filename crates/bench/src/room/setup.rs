//! Before the run the owner creates the room and every member joins it; after it, the
//! owner reads the room's last reliable seq.
//!
//! Both are one request and its answer on a connection nobody else reads yet; frames that
//! answer something else (pongs) are skipped.

use anyhow::{Context, bail};
use magpie_proto::pb::{self, room_request::Op};
use magpie_proto::{Body, Frame, frame};
use tokio::time::{Instant, timeout_at};

use crate::conn::Conn;

/// Request id of the setup request (1 is the handshake's).
const SETUP_RID: u64 = 2;

/// The room settings a run asks for.
#[derive(Debug, Clone, Copy)]
pub struct RoomPlan {
    /// Downstream budget per connection, msgs/s (`None`: the server's default).
    pub budget: Option<u32>,
    /// Room-wide send limit, msgs/s.
    pub send_rate: u32,
}

/// Creates room `id` as the connection's user (its owner): the given budget and send
/// limit, and every member may send HIGH messages.
pub async fn create(
    conn: &mut Conn,
    id: &str,
    plan: RoomPlan,
    until: Instant,
) -> anyhow::Result<()> {
    let settings = pb::RoomSettings {
        budget_per_s: plan.budget,
        send_rate_per_s: Some(plan.send_rate),
        members_may_send_high: Some(true),
        ..pb::RoomSettings::default()
    };
    let op = Op::Create(pb::CreateRoom {
        name: format!("magpie bench {id}"),
        settings: Some(settings),
    });
    match request(conn, id, op, until)
        .await
        .context("creating the room")?
    {
        Body::RoomResult(_) => Ok(()),
        other => bail!("unexpected answer to a room create: {other:?}"),
    }
}

/// The room's last reliable seq: how many HIGH messages it accepted.
pub async fn last_seq(conn: &mut Conn, id: &str, until: Instant) -> anyhow::Result<u64> {
    let op = Op::Get(pb::Empty {});
    match request(conn, id, op, until)
        .await
        .context("reading the room")?
    {
        Body::RoomResult(r) => Ok(r.info.map_or(0, |i| i.last_seq)),
        other => bail!("unexpected answer to a room get: {other:?}"),
    }
}

/// Joins room `id` with nothing received yet.
pub async fn join(conn: &mut Conn, id: &str, until: Instant) -> anyhow::Result<()> {
    let op = Op::Join(pb::JoinRoom { since_seq: 0 });
    match request(conn, id, op, until)
        .await
        .context("joining the room")?
    {
        Body::RoomResult(_) => Ok(()),
        other => bail!("unexpected answer to a room join: {other:?}"),
    }
}

/// Sends one room request and returns its answer (an error answer is an `Err`).
async fn request(conn: &mut Conn, room: &str, op: Op, until: Instant) -> anyhow::Result<Body> {
    let req = pb::RoomRequest {
        room: room.to_owned(),
        op: Some(op),
    };
    conn.writer.push(&frame(SETUP_RID, Body::Room(req)));
    conn.writer.flush().await?;
    let mut frames: Vec<Frame> = Vec::new();
    let answer = async {
        loop {
            if conn.reader.read_into(&mut frames).await? == 0 {
                bail!("the server closed the connection");
            }
            if let Some(f) = frames.drain(..).find(|f| f.request_id == SETUP_RID) {
                return Ok(f.body);
            }
        }
    };
    let body = timeout_at(until, answer)
        .await
        .context("no answer in time")??;
    match body {
        Some(Body::Error(e)) => bail!("refused: code {}: {}", e.code, e.message),
        Some(b) => Ok(b),
        None => bail!("an empty answer"),
    }
}
