//! `magpie room …`: live-room operations, each printing one JSON object (`tail`: one JSON
//! line per message).

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use magpie_client::{
    Client, ClientMsgId, Content, Event, Events, NewRoom, Priority, RoomId, RoomSendOptions,
    RoomSettingsChange, UserId,
};
use serde_json::json;

use crate::cli::{ClientArgs, RoomArgs, RoomOp, RoomSendArgs, RoomTailArgs};
use crate::cmd::{client_args, json};

/// Runs one room operation.
pub async fn run(a: RoomArgs) -> anyhow::Result<()> {
    match a.op {
        RoomOp::Tail(t) => tail(t).await,
        op => {
            let (client, _events) = connect(client_of(&op)).await?;
            let result = one_shot(&client, op).await;
            client.close().await;
            println!("{}", result?);
            Ok(())
        }
    }
}

fn client_of(op: &RoomOp) -> &ClientArgs {
    match op {
        RoomOp::Create(a) => &a.client,
        RoomOp::Join(a) | RoomOp::Info(a) | RoomOp::Close(a) | RoomOp::Members(a) => &a.client,
        RoomOp::Send(a) => &a.client,
        RoomOp::Tail(a) => &a.client,
        RoomOp::Kick(a) | RoomOp::Ban(a) | RoomOp::Unban(a) => &a.client,
        RoomOp::Mute(a) => &a.client,
        RoomOp::Set(a) => &a.client,
    }
}

async fn connect(args: &ClientArgs) -> anyhow::Result<(Client, Events)> {
    let (config, _) = client_args::config(args)?;
    Ok(Client::connect(config).await?)
}

async fn one_shot(client: &Client, op: RoomOp) -> anyhow::Result<serde_json::Value> {
    Ok(match op {
        RoomOp::Create(a) => {
            let mut settings = RoomSettingsChange::default();
            settings.budget_per_s = a.budget;
            settings.slow_mode_ms = a.slow_mode_ms;
            if a.members_may_send_high {
                settings.members_may_send_high = Some(true);
            }
            let mut room = NewRoom::named(a.name).with_settings(settings);
            if let Some(id) = a.id {
                room = room.with_id(RoomId::new(id)?);
            }
            json::room(&client.create_room(room).await?)
        }
        RoomOp::Join(a) => json::room(&client.join_room(&RoomId::new(a.room)?).await?.info),
        RoomOp::Send(a) => send(client, a).await?,
        RoomOp::Info(a) => json::room(&client.room_info(&RoomId::new(a.room)?).await?),
        RoomOp::Close(a) => {
            client.close_room(&RoomId::new(a.room.as_str())?).await?;
            json!({"room": a.room, "closed": true})
        }
        RoomOp::Members(a) => {
            let page = client.room_members(&RoomId::new(a.room)?, None, 0).await?;
            json!({
                "users": page.users.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
                "has_more": page.has_more,
            })
        }
        RoomOp::Kick(a) => {
            let (room, user) = (RoomId::new(a.room)?, UserId::new(a.user)?);
            client.kick_from_room(&room, &user).await?;
            moderated(&room, &user, "kick")
        }
        RoomOp::Ban(a) => {
            let (room, user) = (RoomId::new(a.room)?, UserId::new(a.user)?);
            client.ban_from_room(&room, &user).await?;
            moderated(&room, &user, "ban")
        }
        RoomOp::Unban(a) => {
            let (room, user) = (RoomId::new(a.room)?, UserId::new(a.user)?);
            client.unban_from_room(&room, &user).await?;
            moderated(&room, &user, "unban")
        }
        RoomOp::Mute(a) => {
            let (room, user) = (RoomId::new(a.room)?, UserId::new(a.user)?);
            client
                .mute_in_room(&room, &user, Duration::from_millis(a.ms))
                .await?;
            let mut v = moderated(&room, &user, "mute");
            v["ms"] = a.ms.into();
            v
        }
        RoomOp::Set(a) => {
            let mut change = RoomSettingsChange::default();
            change.budget_per_s = a.budget;
            change.slow_mode_ms = a.slow_mode_ms;
            change.send_rate_per_s = a.send_rate;
            change.mute_all = a.mute_all;
            change.members_may_send_high = a.members_may_send_high;
            change.name = a.name;
            json::room(&client.update_room(&RoomId::new(a.room)?, change).await?)
        }
        RoomOp::Tail(_) => anyhow::bail!("tail is not a one-shot operation"),
    })
}

fn moderated(room: &RoomId, user: &UserId, action: &str) -> serde_json::Value {
    json!({"room": room.as_str(), "user": user.as_str(), "action": action, "ok": true})
}

/// Joins (a send needs it), sends, and prints the ack.
async fn send(client: &Client, a: RoomSendArgs) -> anyhow::Result<serde_json::Value> {
    let room = RoomId::new(a.room)?;
    let mut options = RoomSendOptions::default();
    options.priority = a.priority.as_deref().map(priority).transpose()?;
    if let Some(id) = a.client_msg_id {
        options.client_msg_id = Some(ClientMsgId::new(id)?);
    }
    client.join_room(&room).await.context("joining the room")?;
    let ack = client
        .send_room(&room, Content::text(a.text), options)
        .await?;
    Ok(json::room_ack(&ack))
}

fn priority(s: &str) -> anyhow::Result<Priority> {
    match s {
        "high" => Ok(Priority::High),
        "normal" => Ok(Priority::Normal),
        "low" => Ok(Priority::Low),
        other => anyhow::bail!("unknown priority {other:?} (high, normal or low)"),
    }
}

/// Joins (after `--since`, if given: `--since 0` prints every high message still in the
/// room's log) and prints messages until `--count` of them, until `--timeout-ms` passes
/// without a new one, or until the user is removed from the room.
async fn tail(a: RoomTailArgs) -> anyhow::Result<()> {
    let (client, mut events) = connect(&a.client).await?;
    let room = RoomId::new(a.room.as_str())?;
    let result = print_messages(&client, &mut events, &room, &a).await;
    client.close().await;
    result
}

async fn print_messages(
    client: &Client,
    events: &mut Events,
    room: &RoomId,
    a: &RoomTailArgs,
) -> anyhow::Result<()> {
    let joined = client
        .join_room_since(room, a.since.unwrap_or(0))
        .await
        .context("joining the room")?;
    let idle = a.timeout_ms.map(Duration::from_millis);
    let mut printed = 0;
    let mut stdout = std::io::stdout().lock();
    if a.since == Some(0) {
        // A join after seq 0 brings nothing (0 means "none"): read the log up to where the
        // join started instead; what follows arrives as events.
        let limit = u32::try_from(a.count.unwrap_or(1000)).unwrap_or(u32::MAX);
        let log = client.fetch_room(room, 0, limit).await?;
        for m in log
            .messages
            .iter()
            .filter(|m| m.seq.is_some_and(|s| s <= joined.info.last_seq))
            .take(a.count.unwrap_or(usize::MAX))
        {
            writeln!(stdout, "{}", json::room_message(m))?;
            printed += 1;
        }
        stdout.flush()?;
    }
    // Only messages restart the idle clock; connection events do not.
    let mut deadline = idle.map(|d| tokio::time::Instant::now() + d);
    while a.count.is_none_or(|n| printed < n) {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, events.recv()).await {
                Ok(e) => e,
                Err(_) => break,
            },
            None => events.recv().await,
        };
        match next {
            None => break,
            Some(Event::Room(m)) if &m.room == room => {
                deadline = idle.map(|d| tokio::time::Instant::now() + d);
                writeln!(stdout, "{}", json::room_message(&m))?;
                stdout.flush()?;
                printed += 1;
            }
            Some(Event::RoomGap {
                room: r,
                from_seq,
                to_seq,
            }) if &r == room => {
                eprintln!("magpie: high messages {from_seq}..={to_seq} of {r} were lost");
            }
            Some(Event::RoomNotice { room: r, kind, .. }) if &r == room && kind.removes() => {
                anyhow::bail!("removed from room {r}: {}", kind.name());
            }
            Some(Event::Error(e)) => return Err(e.into()),
            Some(_) => {}
        }
    }
    Ok(())
}
