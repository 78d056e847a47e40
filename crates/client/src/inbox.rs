//! The local conversation list, sans-I/O: every conversation's [`ConversationInfo`] and the
//! unread badge, kept up to date from the list sync, delivered entries, read positions and
//! settings.
//!
//! **Unread without double counting.** A listed conversation says "`unread` messages after
//! `read_seq`, counted up to `last_seq`"; messages delivered afterwards may lie below that
//! `last_seq` (a pull catching up) or above it. So each conversation keeps a watermark,
//! `counted_upto`: an entry at or below it is already reflected in the counts and changes
//! nothing; an entry above it moves it. The unread count is the listed count (whose seqs
//! the SDK does not know, only that they lie at or below the listing's `last_seq`) plus the
//! seqs of unread messages delivered since, known one by one. A read position at or beyond
//! the listing's `last_seq` clears the first part exactly and the second by seq; a read
//! position inside the listed range can only take the server's figure for the first part.
//! Mentions are kept the same way.
//!
//! **Entries that act on messages** (recalls, edits, reactions) count like group events:
//! they move the watermark but are never unread, and they never show a hidden conversation
//! again. A recall or an edit of the conversation's last message updates its preview, so the
//! list never shows recalled content.
//!
//! **The badge is derived, never stored apart.** `total_unread` is the sum of the non-muted
//! conversations' unread, maintained by one function through which every change goes, so
//! it cannot disagree with the list. The server's own totals (in list pages, read results,
//! read updates) are only compared, and a difference is logged.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use magpie_types::{ConvId, Seq, UserId};

use crate::op_entry::OpEntry;
use crate::{ConversationInfo, EntryKind, GroupAction, GroupEvent, Message, MessageOp};

/// The inbox shared by the connection task, which alone writes it (in the order entries are
/// delivered), and the [`Client`](crate::Client) handles, which read it without a round trip
/// to the task. Updates are short and never await, so a plain mutex is enough.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedInbox(Arc<Mutex<Inbox>>);

impl SharedInbox {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inbox> {
        // A panic while holding the lock ends the connection task; what it left is still
        // the best state to read.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The local conversation list.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    me: Option<UserId>,
    convs: HashMap<ConvId, Entry>,
    /// Sum of [`Entry::badge`] over `convs`.
    total_unread: u64,
    /// The list version of the last complete list sync (0: none yet).
    list_version: u64,
}

#[derive(Debug)]
struct Entry {
    /// The public view; `unread` and `mentioned` are derived by [`Entry::refresh`].
    info: ConversationInfo,
    /// Every entry up to this seq is reflected in the counts.
    counted_upto: Seq,
    /// Unread messages as last listed, all at or below `listed_upto`.
    listed_unread: u64,
    listed_mentioned: bool,
    listed_upto: Seq,
    /// Unread messages delivered since the listing (above `listed_upto`, above `read_seq`).
    unread_seqs: BTreeSet<Seq>,
    /// Of those, the ones that mention the user.
    mention_seqs: BTreeSet<Seq>,
}

impl Entry {
    fn new(info: ConversationInfo) -> Self {
        Self {
            info,
            counted_upto: 0,
            listed_unread: 0,
            listed_mentioned: false,
            listed_upto: 0,
            unread_seqs: BTreeSet::new(),
            mention_seqs: BTreeSet::new(),
        }
    }

    /// What this conversation adds to the badge.
    fn badge(&self) -> u64 {
        if self.info.muted { 0 } else { self.info.unread }
    }

    fn refresh(&mut self) {
        // Saturating: the listed count comes from the network.
        self.info.unread = self
            .listed_unread
            .saturating_add(self.unread_seqs.len() as u64);
        self.info.mentioned = self.listed_mentioned || !self.mention_seqs.is_empty();
    }

    /// Moves the read position forward to `read_seq`. `server_unread` is the server's count
    /// after the move, used only where the local counts cannot tell (see the module docs).
    fn read_to(&mut self, read_seq: Seq, server_unread: Option<u64>) {
        if read_seq <= self.info.read_seq {
            return;
        }
        self.info.read_seq = read_seq;
        let after = read_seq.saturating_add(1);
        self.unread_seqs = self.unread_seqs.split_off(&after);
        self.mention_seqs = self.mention_seqs.split_off(&after);
        if read_seq >= self.listed_upto {
            self.listed_unread = 0;
            self.listed_mentioned = false;
        } else if let Some(unread) = server_unread {
            self.listed_unread = unread.saturating_sub(self.unread_seqs.len() as u64);
        }
    }

    /// Takes in the log position of a newly counted entry; false if it was counted already.
    fn advance(&mut self, seq: Seq, time: u64) -> bool {
        if seq <= self.counted_upto {
            return false;
        }
        self.counted_upto = seq;
        self.info.last_seq = self.info.last_seq.max(seq);
        self.info.last_time = self.info.last_time.max(time);
        true
    }
}

impl Inbox {
    /// The user the client is signed in as (whose messages are "own").
    pub(crate) fn set_me(&mut self, me: UserId) {
        self.me = Some(me);
    }

    /// The list version to pass as `since_version` (0: list everything).
    pub(crate) fn list_version(&self) -> u64 {
        self.list_version
    }

    /// A list sync read every page; its version is valid from now on.
    pub(crate) fn list_synced(&mut self, version: u64) {
        self.list_version = version;
    }

    /// Unread summed over the conversations that are not muted.
    pub(crate) fn total_unread(&self) -> u64 {
        self.total_unread
    }

    /// Compares a total the server reported with the local one (they differ while the
    /// client has not caught up, or if the server counts differently).
    pub(crate) fn check_total(&self, server_total: u64, source: &str) {
        if server_total != self.total_unread {
            tracing::debug!(
                server_total,
                local_total = self.total_unread,
                source,
                "the server's unread total differs from the local one"
            );
        }
    }

    /// One conversation's state.
    pub(crate) fn get(&self, conv: &ConvId) -> Option<ConversationInfo> {
        self.convs.get(conv).map(|e| e.info.clone())
    }

    /// Every conversation: pinned ones first, then by last activity, newest first.
    pub(crate) fn snapshot(&self) -> Vec<ConversationInfo> {
        let mut all: Vec<ConversationInfo> = self.convs.values().map(|e| e.info.clone()).collect();
        all.sort_by(|a, b| {
            b.pinned
                .cmp(&a.pinned)
                .then(b.last_time.cmp(&a.last_time))
                .then(b.last_seq.cmp(&a.last_seq))
                .then_with(|| a.conversation.cmp(&b.conversation))
        });
        all
    }

    /// The server's view of a conversation (a list page, or a settings result). Returns the
    /// new state if it changed.
    pub(crate) fn on_listed(&mut self, listed: ConversationInfo) -> Option<ConversationInfo> {
        let conv = listed.conversation.clone();
        self.update(&conv, true, |e, _| {
            let listed_is_current = listed.last_seq >= e.counted_upto;
            let newer_local_message = e
                .info
                .last_message
                .as_ref()
                .is_some_and(|m| m.seq > listed.last_seq);
            // The user's settings are the server's.
            e.info.pinned = listed.pinned;
            e.info.muted = listed.muted;
            e.info.hidden = listed.hidden && !newer_local_message;
            e.info.peer_read_seq = e.info.peer_read_seq.max(listed.peer_read_seq);
            if listed.first_seq != 0 {
                e.info.first_seq = listed.first_seq;
            }
            if listed.peer.is_some() {
                e.info.peer = listed.peer.clone();
            }
            // What comes from the log: the newer of the two views.
            if listed_is_current {
                e.info.last_seq = listed.last_seq;
                e.info.last_time = listed.last_time;
                e.info.active = listed.active;
                if listed.last_message.is_some() || !newer_local_message {
                    e.info.last_message = listed.last_message.clone();
                }
                if listed.name.is_some() {
                    e.info.name = listed.name.clone();
                }
            } else if e.info.name.is_none() {
                e.info.name = listed.name.clone();
            }
            // The listed count replaces what was counted up to the listing.
            e.listed_unread = listed.unread;
            e.listed_mentioned = listed.mentioned;
            e.listed_upto = listed.last_seq;
            let after = listed.last_seq.saturating_add(1);
            e.unread_seqs = e.unread_seqs.split_off(&after);
            e.mention_seqs = e.mention_seqs.split_off(&after);
            e.counted_upto = e.counted_upto.max(listed.last_seq);
            let local_read = e.info.read_seq;
            e.info.read_seq = listed.read_seq;
            e.read_to(local_read, None);
        })
    }

    /// A message delivered to the application (exactly once, in order).
    pub(crate) fn on_message(&mut self, m: &Message) -> Option<ConversationInfo> {
        self.update(&m.conversation, true, |e, me| {
            if !e.advance(m.seq, m.server_time) || m.kind != EntryKind::Message {
                return;
            }
            e.info.last_message = Some(m.clone());
            e.info.hidden = false;
            if me == Some(&m.from) {
                // Sending marks the conversation read up to the message (the server does the
                // same), and nothing counted lies beyond it.
                e.read_to(m.seq, None);
            } else if m.seq > e.info.read_seq {
                e.unread_seqs.insert(m.seq);
                if me.is_some_and(|me| m.mentions_user(me)) {
                    e.mention_seqs.insert(m.seq);
                }
            }
        })
    }

    /// A group event delivered to the application: membership and name, never unread.
    pub(crate) fn on_group_event(&mut self, ev: &GroupEvent) -> Option<ConversationInfo> {
        self.update(&ev.conversation, true, |e, me| {
            if !e.advance(ev.seq, ev.server_time) {
                return;
            }
            if let Some(member) = me.and_then(|me| ev.membership_of(me)) {
                e.info.active = member;
            }
            if matches!(ev.action, GroupAction::Create | GroupAction::Update)
                && let Some(name) = &ev.name
            {
                e.info.name = Some(name.clone());
            }
        })
    }

    /// A recall, edit or reaction delivered to the application: never unread. A recall or an
    /// edit of the last message changes the preview (a recalled message loses its content,
    /// as the server no longer serves it).
    pub(crate) fn on_message_op(&mut self, op: &OpEntry) -> Option<ConversationInfo> {
        self.update(&op.conversation, true, |e, _| {
            if !e.advance(op.entry_seq, op.server_time) {
                return;
            }
            let Some(last) = e.info.last_message.as_mut().filter(|m| m.seq == op.target) else {
                return;
            };
            match &op.op {
                MessageOp::Recall => {
                    last.recalled = true;
                    last.content.body.clear();
                    last.content.metadata.clear();
                }
                MessageOp::Edit(content) if !last.recalled => {
                    last.content = content.clone();
                    last.edited = true;
                }
                MessageOp::Edit(_) | MessageOp::React { .. } => {}
            }
        })
    }

    /// The user deleted messages of `conv` for themselves (here or on another device): they
    /// no longer count as unread (as far as they were counted one by one; a later listing
    /// brings the server's count), and a deleted last message leaves the preview — which
    /// message is last now is unknown until the next list sync says.
    pub(crate) fn on_deleted(&mut self, conv: &ConvId, seqs: &[Seq]) -> Option<ConversationInfo> {
        self.update(conv, false, |e, _| {
            for seq in seqs {
                e.unread_seqs.remove(seq);
                e.mention_seqs.remove(seq);
            }
            if e.info
                .last_message
                .as_ref()
                .is_some_and(|m| seqs.contains(&m.seq))
            {
                e.info.last_message = None;
            }
        })
    }

    /// The user's own read position moved (here or on another device) to `read_seq`, after
    /// which the server counts `unread`. Conversations not known yet are left to the next
    /// list sync.
    pub(crate) fn on_read(
        &mut self,
        conv: &ConvId,
        read_seq: Seq,
        unread: u64,
    ) -> Option<ConversationInfo> {
        self.update(conv, false, |e, _| e.read_to(read_seq, Some(unread)))
    }

    /// The other user of a 1:1 conversation read it up to `read_seq`.
    pub(crate) fn on_peer_read(
        &mut self,
        conv: &ConvId,
        read_seq: Seq,
    ) -> Option<ConversationInfo> {
        self.update(conv, false, |e, _| {
            e.info.peer_read_seq = e.info.peer_read_seq.max(read_seq);
        })
    }

    /// The one place conversations change: applies `f`, re-derives the counts, keeps the
    /// badge equal to the sum, and returns the new state if anything visible changed.
    fn update(
        &mut self,
        conv: &ConvId,
        create: bool,
        f: impl FnOnce(&mut Entry, Option<&UserId>),
    ) -> Option<ConversationInfo> {
        let Self {
            me,
            convs,
            total_unread,
            ..
        } = self;
        let existed = convs.contains_key(conv);
        if !existed && !create {
            return None;
        }
        let entry = convs
            .entry(conv.clone())
            .or_insert_with(|| Entry::new(ConversationInfo::new(conv.clone(), me.as_ref())));
        let before = existed.then(|| entry.info.clone());
        let badge_before = entry.badge();
        f(entry, me.as_ref());
        entry.refresh();
        // `total_unread` includes `badge_before`; saturating only for absurd server counts.
        *total_unread = total_unread
            .saturating_sub(badge_before)
            .saturating_add(entry.badge());
        (before.as_ref() != Some(&entry.info)).then(|| entry.info.clone())
    }
}

#[cfg(test)]
mod tests;
