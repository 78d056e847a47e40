//! `magpie chat`: an interactive terminal chat over 1:1 conversations and groups.
//!
//! Lines typed go to the current conversation. Commands: `/list` (conversations with unread
//! badges, `@` when you were mentioned), `/to USER` (a 1:1 chat), `/group ID` (a group),
//! `/new NAME USER,USER,...` (create a group and switch to it), `/add USER,...`,
//! `/leave`, `/members`, `/history [N]`, `/quit`. Opening a conversation, and every message
//! arriving in the open one, marks it read, so the badge clears on your other devices too.
//! The SDK guarantees each message prints once, in order, also across server restarts.

use magpie_client::{
    Client, ConnectionState, ConvId, Event, GroupEvent, GroupId, Message, NewGroup, Recipient,
    UserId,
};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::ChatArgs;
use crate::cmd::client_args;

const HELP: &str = "commands: /list, /to USER, /group ID, /new NAME USER,USER,..., /add USER,..., /leave, /members, /history [N], /recall SEQ, /edit SEQ TEXT, /react SEQ EMOJI, /quit";

/// Runs the chat until `/quit` or end of input.
pub async fn run(a: ChatArgs) -> anyhow::Result<()> {
    let (config, me) = client_args::config(&a.client)?;
    println!("connecting to {} ...", a.client.server);
    let (client, mut events) = Client::connect(config).await?;
    let me = match me.or_else(|| client.session().map(|s| s.user_id)) {
        Some(u) => u,
        None => anyhow::bail!("the server did not say who we are"),
    };
    let mut chat = Chat {
        client: client.clone(),
        me,
        current: a
            .to
            .map(|u| UserId::new(u).map(Recipient::User))
            .transpose()?,
    };
    println!("signed in as {}. {HELP}", chat.me);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut synced = false;
    // Say "connection lost" once per outage, not once per reconnect attempt.
    let mut online = true;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                if !chat.handle_line(line.trim()).await {
                    break;
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    // During the first sync, messages only update the list; it is shown once.
                    Event::Message(_) | Event::GroupEvent(_) if !synced => {}
                    Event::Message(m) => chat.incoming(&m).await,
                    Event::GroupEvent(e) => chat.group_event(&e).await,
                    Event::SyncComplete if !synced => {
                        synced = true;
                        chat.list();
                        match chat.current.clone() {
                            Some(t) => chat.open(t).await,
                            None => println!("pick a conversation: /to USER, /group ID, or /new NAME USERS"),
                        }
                    }
                    Event::Recalled { conversation, seq, by, .. } => {
                        println!("  ({conversation}) #{seq} was recalled by {by}");
                    }
                    Event::Edited { conversation, seq, content, .. } => {
                        let text = String::from_utf8_lossy(&content.body).into_owned();
                        println!("  ({conversation}) #{seq} edited: {text}");
                    }
                    Event::Reaction { conversation, seq, user, emoji, add, .. } => {
                        let verb = if add { "reacted" } else { "took back" };
                        println!("  ({conversation}) {user} {verb} {emoji} on #{seq}");
                    }
                    Event::Typing { conversation, user, typing: true }
                        if chat.current_conv().as_ref() == Some(&conversation) =>
                    {
                        println!("  … {user} is typing");
                    }
                    Event::ReadReceipt { conversation, user, read_seq }
                        if chat.current_conv().as_ref() == Some(&conversation) =>
                    {
                        println!("  ✓ {user} read up to #{read_seq}");
                    }
                    Event::Connection(ConnectionState::Disconnected { .. }) if online => {
                        online = false;
                        println!("… connection lost, reconnecting (messages you type are sent when it is back)");
                    }
                    Event::Connection(ConnectionState::Connected(_)) if !online => {
                        online = true;
                        println!("… reconnected");
                    }
                    Event::Error(e) => println!("error: {e}"),
                    _ => {}
                }
            }
        }
    }
    client.close().await;
    Ok(())
}

struct Chat {
    client: Client,
    me: UserId,
    current: Option<Recipient>,
}

impl Chat {
    fn current_conv(&self) -> Option<ConvId> {
        match &self.current {
            Some(Recipient::User(u)) => Some(ConvId::direct(&self.me, u)),
            Some(Recipient::Group(g)) => Some(ConvId::group(g)),
            _ => None,
        }
    }

    /// Handles one typed line; returns false to quit.
    async fn handle_line(&mut self, line: &str) -> bool {
        if line.is_empty() {
            return true;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match cmd {
            "/quit" | "/exit" => return false,
            "/help" => println!("{HELP}"),
            "/list" => self.list(),
            "/to" => match UserId::new(rest) {
                Ok(u) => self.open(Recipient::User(u)).await,
                Err(_) => println!("usage: /to USER"),
            },
            "/group" => match GroupId::new(rest) {
                Ok(g) => self.open(Recipient::Group(g)).await,
                Err(_) => println!("usage: /group ID"),
            },
            "/new" => self.create(rest).await,
            "/add" => self.add(rest).await,
            "/leave" => self.leave().await,
            "/members" => self.members().await,
            "/recall" | "/edit" | "/react" => self.op(cmd, rest).await,
            "/history" => {
                let n = rest.parse().unwrap_or(20);
                self.history(n).await;
            }
            c if c.starts_with('/') => println!("unknown command {c}; {HELP}"),
            _ => self.send(line),
        }
        true
    }

    /// The conversation list with unread badges, from the SDK's live state.
    fn list(&self) {
        let list = self.client.conversations_snapshot();
        println!(
            "── conversations ({} unread) ──",
            self.client.total_unread()
        );
        if list.is_empty() {
            println!("  (none yet)");
        }
        for c in list.iter().filter(|c| !c.hidden) {
            let badge = match (c.unread, c.mentioned) {
                (0, _) => "    ".to_owned(),
                (n, true) => format!("[{n}@]"),
                (n, false) => format!("[{n}]"),
            };
            let last = c.last_message.as_ref().map_or(String::new(), |m| {
                let text = if m.recalled {
                    "(recalled)"
                } else {
                    m.text().unwrap_or("[media]")
                };
                format!("{}: {text}", m.from)
            });
            let muted = if c.muted { " (muted)" } else { "" };
            println!("  {badge} {}{muted}  {last}", title(c));
        }
    }

    async fn open(&mut self, target: Recipient) {
        self.current = Some(target);
        let Some(conv) = self.current_conv() else {
            return;
        };
        self.history(20).await;
        if let Err(e) = self.client.mark_read(&conv, None).await {
            // A 1:1 chat with no message yet has nothing to read.
            tracing::debug!(error = %e, "mark read");
        }
        println!("── now in {conv} ──");
    }

    async fn incoming(&self, m: &Message) {
        let here = self.current_conv().as_ref() == Some(&m.conversation);
        print_message(m, !here);
        if here {
            let _ = self.client.mark_read(&m.conversation, Some(m.seq)).await;
        } else if let Some(c) = self.client.conversation(&m.conversation) {
            println!(
                "  ({} unread there; {} in all)",
                c.unread,
                self.client.total_unread()
            );
        }
    }

    async fn group_event(&self, e: &GroupEvent) {
        let users: Vec<&str> = e.users.iter().map(UserId::as_str).collect();
        let by = e.by.as_ref().map_or("someone", UserId::as_str);
        println!("  * [{}] {by} {:?} {}", e.group, e.action, users.join(", "));
    }

    fn send(&self, text: &str) {
        let Some(target) = self.current.clone() else {
            println!("pick a conversation first: /to USER, /group ID");
            return;
        };
        // Sends retry across reconnects until acked; the message prints when the SDK
        // delivers it back in order.
        let (client, text) = (self.client.clone(), text.to_owned());
        tokio::spawn(async move {
            let content = magpie_client::Content::text(text);
            if let Err(e) = client.send_with(target, content, Default::default()).await {
                println!("not sent: {e}");
            }
        });
    }

    async fn create(&mut self, args: &str) {
        let (name, users) = args.split_once(' ').unwrap_or((args, ""));
        let members: Result<Vec<UserId>, _> = users
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(UserId::new)
            .collect();
        let (Ok(members), false) = (members, name.is_empty()) else {
            println!("usage: /new NAME USER,USER,...");
            return;
        };
        match self
            .client
            .create_group(NewGroup::named(name).with_members(members))
            .await
        {
            Ok(g) => {
                println!("created group {} ({} members)", g.id, g.member_count);
                self.open(Recipient::Group(g.id)).await;
            }
            Err(e) => println!("error: {e}"),
        }
    }

    async fn add(&self, users: &str) {
        let Some(Recipient::Group(g)) = &self.current else {
            println!("open a group first: /group ID");
            return;
        };
        let members: Result<Vec<UserId>, _> =
            users.split(',').map(str::trim).map(UserId::new).collect();
        match members {
            Ok(m) => {
                if let Err(e) = self.client.add_members(g, &m).await {
                    println!("error: {e}");
                }
            }
            Err(_) => println!("usage: /add USER,USER,..."),
        }
    }

    async fn leave(&mut self) {
        let Some(Recipient::Group(g)) = self.current.clone() else {
            println!("open a group first: /group ID");
            return;
        };
        match self.client.leave_group(&g).await {
            Ok(_) => {
                println!("left {g}");
                self.current = None;
            }
            Err(e) => println!("error: {e}"),
        }
    }

    async fn op(&self, cmd: &str, rest: &str) {
        let Some(conv) = self.current_conv() else {
            println!("pick a conversation first");
            return;
        };
        let (seq, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        let Ok(seq) = seq.parse::<u64>() else {
            println!("usage: {cmd} SEQ ...");
            return;
        };
        let result = match cmd {
            "/recall" => self.client.recall(&conv, seq).await,
            "/edit" => {
                self.client
                    .edit(&conv, seq, magpie_client::Content::text(arg))
                    .await
            }
            _ => self.client.react(&conv, seq, arg.trim(), true).await,
        };
        if let Err(e) = result {
            println!("error: {e}");
        }
    }

    async fn members(&self) {
        let Some(Recipient::Group(g)) = &self.current else {
            println!("open a group first: /group ID");
            return;
        };
        match self.client.group_members(g, None, 0).await {
            Ok(page) => {
                for m in page.members {
                    println!("  {} ({:?})", m.user, m.role);
                }
            }
            Err(e) => println!("error: {e}"),
        }
    }

    async fn history(&self, n: u32) {
        let Some(conv) = self.current_conv() else {
            println!("pick a conversation first");
            return;
        };
        match self.client.history(&conv, 0, n).await {
            Ok(page) => {
                if page.has_more {
                    println!("  … earlier messages: /history {}", n * 2);
                }
                for m in page.messages.iter().rev() {
                    match GroupEvent::from_message(m) {
                        Some(e) => self.group_event(&e).await,
                        None => print_message(m, false),
                    }
                }
            }
            Err(e) => println!("error: {e}"),
        }
    }
}

fn title(c: &magpie_client::ConversationInfo) -> String {
    match (&c.peer, &c.name) {
        (Some(p), _) => format!("{p} (p2p)"),
        (None, Some(n)) if !n.is_empty() => format!("{n} [{}]", c.conversation),
        _ => c.conversation.to_string(),
    }
}

fn print_message(m: &Message, elsewhere: bool) {
    let text = m
        .text()
        .map_or_else(|| format!("[{}]", m.content.kind.name()), str::to_owned);
    let marker = if elsewhere {
        format!("({}) ", m.conversation)
    } else {
        String::new()
    };
    println!("{marker}#{} {}: {}", m.seq, m.from, text);
}
