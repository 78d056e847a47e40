//! Before the run, over the protocol: the owner creates the group with the first batch of
//! members and adds the rest in batches.
//!
//! Why batches: the server bounds how many users one create or add names
//! (`limits.max_users_per_group_op`, 1,000 by default), and a user must exist (have
//! connected once) to be named, which is why the owner acts only after every member's
//! connection is up. Why a super group past [`ORDINARY_LIMIT`]: an ordinary group holds at
//! most that many members by default. Each request waits for its answer on a connection
//! nobody else reads; the group events the owner itself is pushed are acknowledged, so the
//! server never retransmits them.

use anyhow::{Context, bail};
use magpie_proto::pb::{self, Delivered, group_request::Op};
use magpie_proto::{Body, Frame, frame};
use tokio::time::{Instant, timeout_at};

use crate::conn::Conn;

/// The server's default limit of an ordinary group's members (owner included).
pub const ORDINARY_LIMIT: u64 = 3_000;

/// First request id of the setup requests (1 is the handshake's).
const FIRST_RID: u64 = 2;

/// What the owner sets up.
#[derive(Debug, Clone)]
pub struct GroupPlan {
    /// The group id (fresh per run).
    pub group: String,
    /// Every member's user id, in order.
    pub members: Vec<String>,
    /// Most users one request names (the owner counts in the create).
    pub batch: usize,
    /// Create a super group.
    pub super_group: bool,
}

/// What the setup did.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetupDone {
    /// Requests made (one create, then the adds).
    pub requests: u64,
}

/// Creates the group as the connection's user (its owner) and adds every member.
pub async fn create_and_fill(
    conn: &mut Conn,
    plan: &GroupPlan,
    per_request: std::time::Duration,
    deadline: Instant,
) -> anyhow::Result<SetupDone> {
    let mut done = SetupDone::default();
    let batches = batches(plan.members.len(), plan.batch);
    for (i, (from, to)) in batches.into_iter().enumerate() {
        let users = plan.members[from..to].to_vec();
        let op = if i == 0 {
            Op::Create(pb::CreateGroup {
                group: plan.group.clone(),
                name: format!("magpie bench {}", plan.group),
                members: users,
                join_policy: pb::JoinPolicy::Invite as i32,
                super_group: plan.super_group,
                ..pb::CreateGroup::default()
            })
        } else {
            Op::AddMembers(pb::GroupTarget {
                group: plan.group.clone(),
                users,
            })
        };
        let what = if i == 0 {
            "creating the group"
        } else {
            "adding members"
        };
        let until = (Instant::now() + per_request).min(deadline);
        let rid = FIRST_RID + i as u64;
        request(conn, rid, op, until)
            .await
            .with_context(|| format!("{what} (request {})", i + 1))?;
        done.requests += 1;
    }
    Ok(done)
}

/// The member ranges `[from, to)` of each request: the create names `batch − 1` members
/// (the owner is the batch's first user), each add names up to `batch`.
pub fn batches(members: usize, batch: usize) -> Vec<(usize, usize)> {
    let batch = batch.max(2);
    let mut out = Vec::new();
    let mut from = 0;
    let mut size = batch - 1;
    loop {
        let to = (from + size).min(members);
        out.push((from, to));
        if to >= members {
            return out;
        }
        from = to;
        size = batch;
    }
}

/// Sends one group request and returns its result (an error answer is an `Err`).
async fn request(
    conn: &mut Conn,
    rid: u64,
    op: Op,
    until: Instant,
) -> anyhow::Result<pb::GroupResult> {
    let req = pb::GroupRequest { op: Some(op) };
    conn.writer.push(&frame(rid, Body::Group(req)));
    conn.writer.flush().await?;
    let mut frames: Vec<Frame> = Vec::new();
    let answer = async {
        loop {
            if conn.reader.read_into(&mut frames).await? == 0 {
                bail!("the server closed the connection");
            }
            let mut found = None;
            let mut acks = Vec::new();
            for f in frames.drain(..) {
                if f.request_id == rid {
                    found = Some(f.body);
                } else if let Some(Body::Push(p)) = f.body {
                    // The owner is a member: acknowledge the events it is pushed.
                    acks.extend(p.messages.into_iter().map(|m| Delivered {
                        conversation: m.conversation,
                        seq: m.seq,
                    }));
                }
            }
            if !acks.is_empty() {
                let ack = pb::PushAck { delivered: acks };
                conn.writer.push(&frame(0, Body::PushAck(ack)));
                conn.writer.flush().await?;
            }
            if let Some(body) = found {
                return Ok(body);
            }
        }
    };
    let body = timeout_at(until, answer)
        .await
        .context("no answer in time")??;
    match body {
        Some(Body::GroupResult(r)) => Ok(r),
        Some(Body::Error(e)) => bail!("refused: code {}: {}", e.code, e.message),
        other => bail!("unexpected answer to a group request: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_member_within_the_limit() {
        assert_eq!(batches(5, 1000), vec![(0, 5)]);
        assert_eq!(batches(999, 1000), vec![(0, 999)]);
        assert_eq!(batches(1000, 1000), vec![(0, 999), (999, 1000)]);
        let b = batches(5000, 1000);
        assert_eq!(b.len(), 6);
        assert_eq!(b.first(), Some(&(0, 999)));
        assert_eq!(b.last(), Some(&(4999, 5000)));
        assert!(b.windows(2).all(|w| w[0].1 == w[1].0));
        assert!(b.iter().skip(1).all(|(f, t)| t - f <= 1000));
        assert_eq!(batches(0, 10), vec![(0, 0)]);
    }
}
