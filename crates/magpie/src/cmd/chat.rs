//! `magpie chat`: an interactive terminal chat.
//!
//! Lines typed go to the current peer; `/to USER` switches peer and shows recent history,
//! `/list` shows the conversations, `/history [N]` shows more, `/quit` leaves. Incoming
//! messages print as they arrive, marked when they belong to another conversation. The SDK
//! guarantees each message prints once, in order, also across server restarts.

use std::collections::{BTreeMap, VecDeque};

use magpie_client::{Client, ConnectionState, ConvId, Event, Message, UserId};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::ChatArgs;
use crate::cmd::client_args;

/// Messages of each conversation kept back during the first sync and shown afterwards.
const BACKLOG: usize = 10;

/// Runs the chat until `/quit` or end of input.
pub async fn run(a: ChatArgs) -> anyhow::Result<()> {
    let (config, me) = client_args::config(&a.client)?;
    println!("connecting to {} ...", a.client.server);
    let (client, mut events) = Client::connect(config).await?;
    let me = match me.or_else(|| client.session().map(|s| s.user_id)) {
        Some(u) => u,
        None => anyhow::bail!("the server did not say who we are"),
    };
    let mut peer: Option<UserId> = a.to.map(UserId::new).transpose()?;
    println!(
        "signed in as {me}. Type a message and press Enter. Commands: /to USER, /list, /history [N], /quit"
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut synced = false;
    // Say "connection lost" once per outage, not once per reconnect attempt.
    let mut online = true;
    let mut backlog: BTreeMap<ConvId, VecDeque<Message>> = BTreeMap::new();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                if !handle_line(&client, &me, &mut peer, line.trim()).await? {
                    break;
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    Event::Message(m) if !synced => {
                        let q = backlog.entry(m.conversation.clone()).or_default();
                        q.push_back(m);
                        if q.len() > BACKLOG {
                            q.pop_front();
                        }
                    }
                    Event::Message(m) => print_message(&me, peer.as_ref(), &m),
                    Event::SyncComplete if !synced => {
                        synced = true;
                        let mut latest: Option<(u64, UserId)> = None;
                        for (conv, msgs) in &backlog {
                            if let Some(other) = conv.peer_of(&me) {
                                println!("── conversation with {other} ──");
                                for m in msgs {
                                    print_message(&me, None, m);
                                }
                                let t = msgs.back().map_or(0, |m| m.server_time);
                                if latest.as_ref().is_none_or(|(lt, _)| t > *lt) {
                                    latest = Some((t, other));
                                }
                            }
                        }
                        backlog.clear();
                        if peer.is_none() {
                            peer = latest.map(|(_, u)| u);
                        }
                        match &peer {
                            Some(p) => println!("talking to {p} (switch with /to USER)"),
                            None => println!("no conversations yet: start one with /to USER"),
                        }
                    }
                    Event::Connection(ConnectionState::Disconnected { .. }) if online => {
                        online = false;
                        println!("… connection lost, reconnecting (messages you type are sent when it is back)");
                    }
                    Event::Connection(ConnectionState::Connected(_)) if !online => {
                        online = true;
                        println!("… reconnected");
                    }
                    Event::Error(e) => {
                        println!("error: {e}");
                    }
                    _ => {}
                }
            }
        }
    }
    client.close().await;
    Ok(())
}

/// Handles one typed line; returns false to quit.
async fn handle_line(
    client: &Client,
    me: &UserId,
    peer: &mut Option<UserId>,
    line: &str,
) -> anyhow::Result<bool> {
    if line.is_empty() {
        return Ok(true);
    }
    let mut words = line.split_whitespace();
    match words.next() {
        Some("/quit" | "/exit") => return Ok(false),
        Some("/to") => match words.next().map(UserId::new) {
            Some(Ok(u)) => {
                show_history(client, me, &u, 20).await;
                println!("talking to {u}");
                *peer = Some(u);
            }
            _ => println!("usage: /to USER"),
        },
        Some("/list") => match client.conversations().await {
            Ok(list) => {
                for c in list {
                    let who = c
                        .peer
                        .map_or_else(|| c.conversation.to_string(), |p| p.to_string());
                    println!("  {who}: {} messages", c.last_seq);
                }
            }
            Err(e) => println!("error: {e}"),
        },
        Some("/history") => {
            let n = words.next().and_then(|w| w.parse().ok()).unwrap_or(20);
            match peer {
                Some(p) => show_history(client, me, p, n).await,
                None => println!("pick a peer first: /to USER"),
            }
        }
        Some(cmd) if cmd.starts_with('/') => println!("unknown command {cmd}"),
        _ => match peer {
            Some(p) => {
                // Sends retry across reconnects until acked; the message prints when the
                // SDK delivers it back in order.
                let (client, p, text) = (client.clone(), p.clone(), line.to_owned());
                tokio::spawn(async move {
                    if let Err(e) = client.send_text(&p, text).await {
                        println!("not sent: {e}");
                    }
                });
            }
            None => println!("pick a peer first: /to USER"),
        },
    }
    Ok(true)
}

async fn show_history(client: &Client, me: &UserId, peer: &UserId, n: u32) {
    let conv = ConvId::direct(me, peer);
    match client.history(&conv, 0, n).await {
        Ok(page) => {
            if page.has_more {
                println!("  … earlier messages: /history {}", n * 2);
            }
            for m in page.messages.iter().rev() {
                print_message(me, None, m);
            }
        }
        Err(e) => println!("error: {e}"),
    }
}

fn print_message(me: &UserId, current_peer: Option<&UserId>, m: &Message) {
    let text = m
        .text()
        .map_or_else(|| format!("[{}]", m.content.kind.name()), str::to_owned);
    let other = m.conversation.peer_of(me);
    let elsewhere = match (current_peer, &other) {
        (Some(p), Some(o)) => p != o,
        _ => false,
    };
    let marker = match (&other, elsewhere) {
        (Some(o), true) => format!("(from conversation with {o}) "),
        _ => String::new(),
    };
    println!("{marker}#{} {}: {}", m.seq, m.from, text);
}
