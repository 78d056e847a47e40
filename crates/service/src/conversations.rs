//! The conversation list, unread counts, read positions and per-user settings.
//!
//! Unread is derived, never counted per member: every log entry carries `count`, the number
//! of unread-counting entries up to it, so a user's unread in a conversation is
//! `count(last visible) − count(read position)` — one position per (conversation, user), for
//! 1:1 chats and 100,000-member groups alike. The user's own sends move their read position
//! (so their messages never count), and a (re)joined member's position is at least the seq
//! of their join. The badge (`total_unread`) is summed from the same views the list shows,
//! so the two can never disagree.
//!
//! Incremental sync: each view has a version, the largest of its last entry's message id,
//! its read position's stamp and its settings' stamp (all snowflake ids, so time-ordered).
//! A list request with `since_version` returns the views whose version is newer, less a
//! [`VERSION_SLACK`]: an id is taken before its write commits, so a write that was in
//! flight when the version was handed out may carry a slightly older id. Returning a view
//! twice is harmless (views are states, not deltas); missing one would not be.

use magpie_core::ErrorKind;
use magpie_core::membership::{first_visible, last_visible, visible};
use magpie_store::records::{self, ConvPrefs};
use magpie_store::{ConversationEntry, StoredMessage, Table};
use magpie_types::{ConvId, ConvKind, EntryKind, Seq, UserId};
use std::sync::Arc;

use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::{Outbound, ReadNotice, SessionCtx};

/// How far before `since_version` a change is still returned: ten seconds of snowflake
/// time (the millisecond timestamp starts at bit 22).
pub const VERSION_SLACK: u64 = 10_000 << 22;
/// Index entries read per page while building the list.
const INDEX_PAGE: usize = 1_000;
/// Entries looked back from the end for the last MESSAGE (skipping events) for a preview.
const PREVIEW_LOOKBACK: usize = 32;

/// One conversation as one user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvView {
    /// The conversation.
    pub conv: ConvId,
    /// For 1:1, the other user.
    pub peer: Option<UserId>,
    /// For groups, the name.
    pub name: String,
    /// Still a member (always true for 1:1).
    pub active: bool,
    /// First seq the user may see.
    pub first_seq: Seq,
    /// Last seq the user may see.
    pub last_seq: Seq,
    /// Server time of the entry at `last_seq`.
    pub last_time: u64,
    /// The last MESSAGE entry the user may see.
    pub last_message: Option<StoredMessage>,
    /// Whether that message was recalled or edited since.
    pub last_overlay: Option<crate::ops::Overlay>,
    /// Unread MESSAGE entries from others.
    pub unread: u64,
    /// The user's read position (at least their latest join).
    pub read_seq: Seq,
    /// An unread entry mentions the user or everyone.
    pub mentioned: bool,
    /// Pinned / muted / hidden settings.
    pub prefs: ConvPrefs,
    /// Hidden now (hidden, and nothing newer arrived since).
    pub hidden: bool,
    /// For 1:1, the other user's read position.
    pub peer_read_seq: Seq,
    /// Version stamp (see the module docs).
    pub version: u64,
}

impl ConvView {
    /// Whether the view counts towards the badge.
    pub fn counts_in_badge(&self) -> bool {
        !self.prefs.muted && !self.hidden
    }
}

/// A page of the user's conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationPage {
    /// Views ascending by conversation id.
    pub conversations: Vec<ConvView>,
    /// More follow.
    pub has_more: bool,
    /// The version to pass as `since_version` next time.
    pub version: u64,
    /// Unread over every non-muted, non-hidden conversation.
    pub total_unread: u64,
}

/// The result of marking a conversation read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The conversation.
    pub conv: ConvId,
    /// The read position now.
    pub read_seq: Seq,
    /// Unread in the conversation now.
    pub unread: u64,
    /// The badge now.
    pub total_unread: u64,
}

/// Settings changes (`None`: unchanged).
#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsChange {
    /// Pin to the top.
    pub pinned: Option<bool>,
    /// Mute.
    pub muted: Option<bool>,
    /// Hide until something new arrives.
    pub hidden: Option<bool>,
}

impl Service {
    /// The user's conversations after `after` (by id), changed since `since_version` (0 =
    /// all), with the badge over all of them.
    pub async fn conversations(
        &self,
        who: &SessionCtx,
        after: Option<&ConvId>,
        limit: u32,
        since_version: u64,
    ) -> Result<ConversationPage, ServiceError> {
        // Taken before anything is read: whatever commits later has a newer version.
        let version = self.next_id(self.now_ms());
        let limit = self.limits().page(limit);
        let views = self.all_views(who).await?;
        let total_unread = badge(&views);
        let since = since_version.saturating_sub(VERSION_SLACK);
        let mut page: Vec<ConvView> = views
            .into_iter()
            .filter(|v| after.is_none_or(|a| &v.conv > a))
            .filter(|v| since_version == 0 || v.version > since)
            .take(limit + 1)
            .collect();
        let has_more = page.len() > limit;
        page.truncate(limit);
        Ok(ConversationPage {
            conversations: page,
            has_more,
            version,
            total_unread,
        })
    }

    /// Marks `conv` read up to `seq` (0 = the latest the user may see). Tells the user's
    /// other devices and, for 1:1, the other user (a read receipt).
    pub async fn mark_read(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        seq: Seq,
    ) -> Result<ReadOutcome, ServiceError> {
        let iv = self.visibility(who, conv).await?;
        let last = last_visible(&iv, self.store.last_seq(&who.app, conv).await?);
        let target = if seq == 0 || seq > last { last } else { seq };
        let version = self.next_id(self.now_ms());
        self.store
            .mark_read(&who.app, &who.user, conv, target, version)
            .await?;
        let views = self.all_views(who).await?;
        let total_unread = badge(&views);
        let view = views.iter().find(|v| &v.conv == conv);
        let outcome = ReadOutcome {
            conv: conv.clone(),
            read_seq: view.map_or(target, |v| v.read_seq),
            unread: view.map_or(0, |v| v.unread),
            total_unread,
        };
        self.notify_read(who, &outcome);
        metrics::counter!("magpie_reads_total").increment(1);
        self.emit(&who.app, "message.read", || {
            (
                format!("message.read:{}:{}:{}", conv, who.user, outcome.read_seq),
                serde_json::json!({
                    "user": who.user.as_str(),
                    "conversation": conv.to_string(),
                    "read_seq": outcome.read_seq,
                }),
            )
        });
        Ok(outcome)
    }

    /// Changes the user's settings of `conv`. Hiding also marks it read.
    pub async fn set_conversation(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        change: SettingsChange,
    ) -> Result<(ConvView, u64), ServiceError> {
        let iv = self.visibility(who, conv).await?;
        let last = last_visible(&iv, self.store.last_seq(&who.app, conv).await?);
        if last == 0 {
            return Err(ServiceError::new(
                ErrorKind::NotFound,
                "no such conversation (nothing was sent in it yet)",
            ));
        }
        let key = records::prefs_key(&who.user, conv);
        let mut prefs = self.prefs(who, conv).await?;
        if let Some(p) = change.pinned {
            prefs.pinned = p;
        }
        if let Some(m) = change.muted {
            prefs.muted = m;
        }
        match change.hidden {
            Some(true) => {
                prefs.hidden_upto = last.max(1);
                self.store
                    .mark_read(&who.app, &who.user, conv, last, self.next_id(self.now_ms()))
                    .await?;
            }
            Some(false) => prefs.hidden_upto = 0,
            None => {}
        }
        prefs.version = self.next_id(self.now_ms());
        let write = records::put(Table::ConvPrefs, key, &prefs)?;
        self.store.write_records(&who.app, vec![write]).await?;
        let views = self.all_views(who).await?;
        let total = badge(&views);
        let view = views
            .into_iter()
            .find(|v| &v.conv == conv)
            .ok_or_else(|| ServiceError::new(ErrorKind::NotFound, "no such conversation"))?;
        Ok((view, total))
    }

    /// For each seq, how many members have read it and how many could (members at that
    /// seq, its sender excluded): group read receipts from read positions alone.
    pub async fn read_counts(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        seqs: &[Seq],
    ) -> Result<Vec<(u64, u64)>, ServiceError> {
        let iv = self.visibility(who, conv).await?;
        if seqs.len() > self.limits().max_page {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("at most {} seqs per request", self.limits().max_page),
            ));
        }
        let mut senders = Vec::with_capacity(seqs.len());
        for &s in seqs {
            if !visible(&iv, s) {
                return Err(ServiceError::new(
                    ErrorKind::Forbidden,
                    format!("seq {s} is not visible to you"),
                ));
            }
            let entry = self.store.read_after(&who.app, conv, s - 1, 1).await?;
            senders.push(entry.into_iter().next().map(|m| m.from_user));
        }
        // Members and their intervals.
        let members: Vec<(UserId, Vec<(Seq, Seq)>)> = match conv.kind() {
            ConvKind::Direct { low, high } => {
                vec![(low, vec![(1, Seq::MAX)]), (high, vec![(1, Seq::MAX)])]
            }
            ConvKind::Group { id } => {
                let guard = self.groups.read(&*self.store, &who.app, &id).await?;
                guard
                    .as_ref()
                    .map(|s| {
                        s.members
                            .iter()
                            .map(|(u, m)| (u.clone(), m.intervals.clone()))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        };
        let mut positions = std::collections::HashMap::new();
        let mut after: Option<UserId> = None;
        loop {
            let page = self
                .store
                .read_positions(&who.app, conv, after.as_ref(), INDEX_PAGE)
                .await?;
            let full = page.len() == INDEX_PAGE;
            after = page.last().map(|(u, _)| u.clone());
            positions.extend(page.into_iter().map(|(u, p)| (u, p.seq)));
            if !full {
                break;
            }
        }
        Ok(seqs
            .iter()
            .zip(&senders)
            .map(|(&s, sender)| {
                let mut could = 0;
                let mut read = 0;
                for (u, iv) in &members {
                    if Some(u) == sender.as_ref() || !visible(iv, s) {
                        continue;
                    }
                    could += 1;
                    if positions.get(u).is_some_and(|&p| p >= s) {
                        read += 1;
                    }
                }
                (read, could)
            })
            .collect())
    }

    /// Every conversation of the user, ascending by id.
    async fn all_views(&self, who: &SessionCtx) -> Result<Vec<ConvView>, ServiceError> {
        let mut views = Vec::new();
        let mut after: Option<ConvId> = None;
        loop {
            let entries = self
                .store
                .conversations(&who.app, &who.user, after.as_ref(), INDEX_PAGE)
                .await?;
            let full = entries.len() == INDEX_PAGE;
            after = entries.last().map(|e| e.conv.clone());
            for e in entries {
                if let Some(v) = self.view(who, e).await? {
                    views.push(v);
                }
            }
            if !full {
                break;
            }
        }
        Ok(views)
    }

    /// One conversation as `who` sees it (`None` for a group they never belonged to).
    async fn view(
        &self,
        who: &SessionCtx,
        entry: ConversationEntry,
    ) -> Result<Option<ConvView>, ServiceError> {
        let (app, conv) = (&who.app, entry.conv);
        let (iv, name, active) = match conv.kind() {
            ConvKind::Direct { .. } => (vec![(1, Seq::MAX)], String::new(), true),
            ConvKind::Group { id } => {
                let guard = self.groups.read(&*self.store, app, &id).await?;
                let Some(s) = guard.as_ref() else {
                    return Ok(None);
                };
                let Some(m) = s.members.get(&who.user) else {
                    return Ok(None);
                };
                (m.intervals.clone(), s.record.name.clone(), m.is_active())
            }
        };
        let last = last_visible(&iv, self.store.last_seq(app, &conv).await?);
        let last_entry = self.entry_at(who, &conv, last).await?;
        // A group member's unread starts at their latest join (an event, so it counts for
        // nothing itself), whatever their position from an earlier membership.
        let joined = if conv.is_direct() {
            0
        } else {
            iv.iter()
                .rev()
                .find(|(from, _)| *from <= last)
                .map_or(0, |&(from, _)| from)
        };
        let read = self.store.read_position(app, &conv, &who.user).await?;
        let (read_seq, read_count) = if read.seq >= joined {
            (read.seq, read.count)
        } else {
            let at_join = self.entry_at(who, &conv, joined).await?;
            (joined, at_join.map_or(0, |m| m.count))
        };
        let last_count = last_entry.as_ref().map_or(0, |m| m.count);
        let unread = if read_seq >= last {
            0
        } else {
            last_count.saturating_sub(read_count)
        };
        let mention = self.store.last_mention(app, &conv, &who.user).await?;
        let mentioned = mention > read_seq && mention <= last && visible(&iv, mention);
        let prefs = self.prefs(who, &conv).await?;
        let peer = conv.peer_of(&who.user);
        let peer_read_seq = match &peer {
            Some(p) => self.store.read_position(app, &conv, p).await?.seq,
            None => 0,
        };
        let last_message = match &last_entry {
            Some(m) if m.kind == EntryKind::Message => Some(m.clone()),
            Some(_) => self
                .store
                .read_before(app, &conv, last, PREVIEW_LOOKBACK)
                .await?
                .into_iter()
                .find(|m| m.kind == EntryKind::Message && visible(&iv, m.seq)),
            None => None,
        };
        let last_overlay = match &last_message {
            Some(m) => self
                .overlays(who, &conv, std::slice::from_ref(m))
                .await?
                .remove(&m.seq),
            None => None,
        };
        let version = last_entry
            .as_ref()
            .map_or(0, |m| m.msg_id)
            .max(read.version)
            .max(prefs.version);
        Ok(Some(ConvView {
            peer,
            name,
            active,
            first_seq: first_visible(&iv),
            last_seq: last,
            last_time: last_entry
                .as_ref()
                .map_or(entry.last_time, |m| m.server_time),
            last_message,
            last_overlay,
            unread,
            read_seq,
            mentioned,
            hidden: prefs.hidden_upto > 0 && last <= prefs.hidden_upto,
            prefs,
            peer_read_seq,
            version,
            conv,
        }))
    }

    async fn entry_at(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        seq: Seq,
    ) -> Result<Option<StoredMessage>, ServiceError> {
        if seq == 0 {
            return Ok(None);
        }
        let page = self.store.read_after(&who.app, conv, seq - 1, 1).await?;
        Ok(page.into_iter().next().filter(|m| m.seq == seq))
    }

    async fn prefs(&self, who: &SessionCtx, conv: &ConvId) -> Result<ConvPrefs, ServiceError> {
        let key = records::prefs_key(&who.user, conv);
        match self
            .store
            .get_record(&who.app, Table::ConvPrefs, &key)
            .await?
        {
            Some(bytes) => Ok(records::decode(&bytes)?),
            None => Ok(ConvPrefs::default()),
        }
    }

    fn notify_read(&self, who: &SessionCtx, r: &ReadOutcome) {
        let own = Outbound::Read(Arc::new(ReadNotice {
            conv: r.conv.clone(),
            user: who.user.clone(),
            read_seq: r.read_seq,
            unread: r.unread,
            total_unread: r.total_unread,
        }));
        self.sessions
            .push_to_user(&who.app, &who.user, Some(who.conn_id), &own);
        if let Some(peer) = r.conv.peer_of(&who.user) {
            let receipt = Outbound::Read(Arc::new(ReadNotice {
                conv: r.conv.clone(),
                user: who.user.clone(),
                read_seq: r.read_seq,
                unread: 0,
                total_unread: 0,
            }));
            self.sessions.push_to_user(&who.app, &peer, None, &receipt);
        }
    }
}

fn badge(views: &[ConvView]) -> u64 {
    views
        .iter()
        .filter(|v| v.counts_in_badge())
        .map(|v| v.unread)
        .sum()
}
