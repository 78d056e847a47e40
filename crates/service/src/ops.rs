//! Operations on earlier messages: recall, edit, reactions (each an entry of its own in the
//! log, so sync carries it in order) and delete-for-me (per user, outside the log).
//!
//! The log stays append-only. So that a page of history can be served as messages stand
//! now, a recall or edit also writes a small state record for the target message in the
//! same commit as its entry; pages read those records for the messages they return.

use std::collections::BTreeMap;
use std::sync::Arc;

use magpie_core::ErrorKind;
use magpie_core::membership::visible;
use magpie_store::records::{self, DeletedRecord, MessageStateRecord};
use magpie_store::{AppendRequest, EntryExtras, RecordWrite, StoredMessage, Table};
use magpie_types::{ClientMsgId, Content, ContentType, ConvId, ConvKind, EntryKind, Seq, UserId};

use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::{DeletedNotice, Outbound, SessionCtx};

/// Longest reaction (an emoji, or a short code), bytes.
const MAX_REACTION: usize = 64;

/// What to do to a message.
#[derive(Debug, Clone)]
pub enum MessageOp {
    /// Recall it.
    Recall,
    /// Replace its content.
    Edit(Content),
    /// Add or remove a reaction.
    React {
        /// The emoji.
        emoji: String,
        /// Add (true) or remove.
        add: bool,
    },
}

/// The result of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpAck {
    /// The conversation.
    pub conv: ConvId,
    /// The seq of the entry the operation appended.
    pub seq: Seq,
    /// A retry of an operation already done.
    pub duplicate: bool,
}

/// How a message stands now, for serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// Recalled: serve it without content.
    Recalled,
    /// Edited: serve this content.
    Edited(Content),
}

impl Service {
    /// Recalls, edits or reacts to the message at `seq` of `conv`.
    pub async fn message_op(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        seq: Seq,
        client_msg_id: ClientMsgId,
        op: MessageOp,
    ) -> Result<OpAck, ServiceError> {
        self.check_send_rate(who)?;
        let (iv, role_admin, muted) = self.op_access(who, conv).await?;
        // An edit's new text passes the same filter and hook as a new message.
        let op = match op {
            MessageOp::Edit(content) => MessageOp::Edit(
                self.screen(
                    who,
                    crate::screening::Target::Conversation(conv),
                    client_msg_id.as_str(),
                    content,
                )
                .await?,
            ),
            other => other,
        };
        // A retry returns the original answer, whatever changed since (the message may be
        // recalled by this very operation).
        if let Some(original) = self
            .store
            .original(&who.app, &who.user, &client_msg_id)
            .await?
        {
            if &original.conv != conv || original.reply_to != seq {
                return Err(ServiceError::new(
                    ErrorKind::InvalidArgument,
                    "client_msg_id already used for another message",
                ));
            }
            return Ok(OpAck {
                conv: conv.clone(),
                seq: original.seq,
                duplicate: true,
            });
        }
        if seq == 0 || !visible(&iv, seq) {
            return Err(ServiceError::new(
                ErrorKind::NotFound,
                format!("no message {seq} you can see"),
            ));
        }
        let target = self
            .store
            .read_after(&who.app, conv, seq - 1, 1)
            .await?
            .into_iter()
            .next()
            .filter(|m| m.seq == seq && m.kind == EntryKind::Message)
            .ok_or_else(|| ServiceError::new(ErrorKind::NotFound, format!("no message {seq}")))?;
        let state = self.message_state(who, conv, seq).await?;
        if state.recalled {
            return Err(ServiceError::new(
                ErrorKind::NotFound,
                "the message was recalled",
            ));
        }
        let now = self.now_ms();
        let mine = target.from_user == who.user;
        let (kind, content, state_write) = match op {
            MessageOp::Recall => {
                let window = self.apps().recall_window_ms(&who.app);
                if !mine && !role_admin {
                    return Err(ServiceError::new(
                        ErrorKind::Forbidden,
                        "only the sender or a group admin may recall",
                    ));
                }
                if mine && !role_admin && now.saturating_sub(target.server_time) > window {
                    return Err(ServiceError::new(
                        ErrorKind::WindowClosed,
                        format!(
                            "messages can be recalled for {} s after sending",
                            window / 1000
                        ),
                    ));
                }
                let next = MessageStateRecord {
                    recalled: true,
                    edited: None,
                };
                (EntryKind::Recall, Content::text(""), Some(next))
            }
            MessageOp::Edit(content) => {
                if !mine {
                    return Err(ServiceError::new(
                        ErrorKind::Forbidden,
                        "only the sender may edit",
                    ));
                }
                if muted {
                    return Err(ServiceError::new(ErrorKind::Muted, "you are muted here"));
                }
                magpie_core::send::validate_content(self.limits(), &content)
                    .map_err(|e| ServiceError::new(e.kind(), e.to_string()))?;
                let next = MessageStateRecord {
                    recalled: false,
                    edited: Some((
                        content.kind.code(),
                        content.body.clone(),
                        content.metadata.clone(),
                    )),
                };
                (EntryKind::Edit, content, Some(next))
            }
            MessageOp::React { emoji, add } => {
                if emoji.is_empty() || emoji.len() > MAX_REACTION {
                    return Err(ServiceError::new(
                        ErrorKind::InvalidArgument,
                        format!("a reaction is 1 to {MAX_REACTION} bytes"),
                    ));
                }
                if muted {
                    return Err(ServiceError::new(ErrorKind::Muted, "you are muted here"));
                }
                let mut c = Content::text(emoji);
                c.metadata
                    .insert("op".into(), if add { "add" } else { "remove" }.into());
                (EntryKind::Reaction, c, None)
            }
        };
        let mut writes: Vec<RecordWrite> = Vec::new();
        if let Some(next) = state_write {
            writes.push(records::put(
                Table::MessageStates,
                records::message_state_key(conv, seq),
                &next,
            )?);
        }
        let parties = match conv.kind() {
            ConvKind::Direct { low, high } => vec![low, high],
            ConvKind::Group { .. } => Vec::new(),
        };
        let outcome = self
            .store
            .append(AppendRequest {
                app: who.app.clone(),
                conv: conv.clone(),
                msg_id: self.next_id(now),
                from_user: who.user.clone(),
                from_device: who.device.clone(),
                client_msg_id,
                content,
                server_time: now,
                parties: parties.clone(),
                extras: EntryExtras {
                    kind,
                    reply_to: seq,
                    ..EntryExtras::default()
                },
                expect_seq: None,
                sender_read: false,
                records: writes,
            })
            .await?;
        let duplicate = matches!(outcome, magpie_store::AppendOutcome::Duplicate(_));
        let entry = outcome.message().clone();
        if !duplicate {
            self.fan_out_entry(who, conv, &entry, &parties).await?;
            let kind_name = match kind {
                EntryKind::Recall => Some("message.recalled"),
                EntryKind::Edit => Some("message.edited"),
                _ => None,
            };
            if let Some(k) = kind_name {
                self.emit(&who.app, k, || {
                    (
                        format!("{k}:{}", entry.msg_id),
                        serde_json::json!({
                            "conversation": conv.to_string(),
                            "seq": entry.reply_to,
                            "by": who.user.as_str(),
                            "op_seq": entry.seq,
                        }),
                    )
                });
            }
            metrics::counter!("magpie_message_ops_total", "kind" => format!("{kind:?}"))
                .increment(1);
        }
        Ok(OpAck {
            conv: conv.clone(),
            seq: entry.seq,
            duplicate,
        })
    }

    /// Hides messages for this user only, on all their devices.
    pub async fn delete_for_me(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        seqs: &[Seq],
    ) -> Result<Vec<Seq>, ServiceError> {
        let iv = self.visibility(who, conv).await?;
        if seqs.is_empty() || seqs.len() > self.limits().max_page {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("name 1 to {} seqs", self.limits().max_page),
            ));
        }
        if let Some(s) = seqs.iter().find(|s| **s == 0 || !visible(&iv, **s)) {
            return Err(ServiceError::new(
                ErrorKind::NotFound,
                format!("no message {s} you can see"),
            ));
        }
        let mut rec = self.deleted(who, conv).await?;
        rec.seqs.extend(seqs.iter().copied());
        let write = records::put(Table::Deleted, records::prefs_key(&who.user, conv), &rec)?;
        self.store.write_records(&who.app, vec![write]).await?;
        let mut done: Vec<Seq> = seqs.to_vec();
        done.sort_unstable();
        done.dedup();
        let item = Outbound::Deleted(Arc::new(DeletedNotice {
            conv: conv.clone(),
            seqs: done.clone(),
        }));
        self.sessions
            .push_lossy(&who.app, &who.user, Some(who.conn_id), &item);
        Ok(done)
    }

    /// The seqs `who` deleted for themselves in `conv`.
    pub(crate) async fn deleted(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
    ) -> Result<DeletedRecord, ServiceError> {
        match self
            .store
            .get_record(
                &who.app,
                Table::Deleted,
                &records::prefs_key(&who.user, conv),
            )
            .await?
        {
            Some(b) => Ok(records::decode(&b)?),
            None => Ok(DeletedRecord::default()),
        }
    }

    /// How the messages of a page stand now (recalled or edited), by seq: one range scan
    /// of the conversation's state records between the page's first and last seq (keys
    /// sort by seq), not a read per message.
    pub(crate) async fn overlays(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        messages: &[StoredMessage],
    ) -> Result<BTreeMap<Seq, Overlay>, ServiceError> {
        let mut out = BTreeMap::new();
        let seqs = messages
            .iter()
            .filter(|m| m.kind == EntryKind::Message)
            .map(|m| m.seq);
        let (Some(low), Some(high)) = (seqs.clone().min(), seqs.max()) else {
            return Ok(out);
        };
        let prefix = format!("{conv}:");
        let after = records::message_state_key(conv, low - 1);
        let span = usize::try_from(high - low + 1).unwrap_or(usize::MAX);
        let page = self
            .store
            .scan_records(&who.app, Table::MessageStates, &prefix, Some(&after), span)
            .await?;
        let wanted: std::collections::HashSet<Seq> = messages.iter().map(|m| m.seq).collect();
        for (key, value) in page {
            let Some(seq) = key.rsplit(':').next().and_then(|s| s.parse::<Seq>().ok()) else {
                continue;
            };
            if seq > high {
                break;
            }
            if !wanted.contains(&seq) {
                continue;
            }
            let s: MessageStateRecord = records::decode(&value)?;
            if s.recalled {
                out.insert(seq, Overlay::Recalled);
            } else if let Some((kind, body, metadata)) = s.edited {
                let kind = ContentType::from_code(u32::from(kind)).unwrap_or(ContentType::Custom);
                out.insert(
                    seq,
                    Overlay::Edited(Content {
                        kind,
                        body,
                        metadata,
                    }),
                );
            }
        }
        Ok(out)
    }

    async fn message_state(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        seq: Seq,
    ) -> Result<MessageStateRecord, ServiceError> {
        match self
            .store
            .get_record(
                &who.app,
                Table::MessageStates,
                &records::message_state_key(conv, seq),
            )
            .await?
        {
            Some(b) => Ok(records::decode(&b)?),
            None => Ok(MessageStateRecord::default()),
        }
    }

    /// The user's intervals in `conv`, whether they are a group admin, and whether muted.
    /// Former members may not act on messages.
    async fn op_access(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
    ) -> Result<(Vec<(Seq, Seq)>, bool, bool), ServiceError> {
        match conv.kind() {
            ConvKind::Direct { .. } => Ok((self.visibility(who, conv).await?, false, false)),
            ConvKind::Group { id } => {
                let guard = self.groups.read(&*self.store, &who.app, &id).await?;
                let m = guard
                    .as_ref()
                    .filter(|s| !s.record.dismissed)
                    .and_then(|s| s.active(&who.user).map(|m| (m.clone(), s.record.muted_all)))
                    .ok_or_else(|| {
                        ServiceError::new(ErrorKind::Forbidden, "not a member of this group")
                    })?;
                let (m, muted_all) = m;
                let admin = m.role().is_admin();
                let muted = m.muted_until_ms > self.now_ms() || (muted_all && !admin);
                Ok((m.intervals, admin, muted))
            }
        }
    }

    /// Pushes an entry to everyone who should see it.
    async fn fan_out_entry(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        entry: &StoredMessage,
        parties: &[UserId],
    ) -> Result<(), ServiceError> {
        match conv.kind() {
            ConvKind::Group { id } => {
                let guard = self.groups.read(&*self.store, &who.app, &id).await?;
                if let Some(s) = guard.as_ref() {
                    self.fan_out_group(&who.app, s, entry, Some(who.conn_id), &[]);
                }
            }
            ConvKind::Direct { .. } => {
                let item = Outbound::Message(Arc::new(crate::Delivery {
                    msg: entry.clone(),
                    encoded: std::sync::OnceLock::new(),
                }));
                for p in parties {
                    self.sessions
                        .push_to_user(&who.app, p, Some(who.conn_id), &item);
                }
            }
        }
        Ok(())
    }
}
