//! Group events: the membership and profile changes a group's log carries between its
//! messages, parsed from their JSON.
//!
//! A `GROUP_EVENT` entry's content is text holding a JSON object
//! `{"action": "...", "by": "...", "users": [...], ...}`. The fields this SDK models are
//! parsed into [`GroupEvent`]; the whole object stays available as [`GroupEvent::json`] for
//! fields added later. An action this SDK does not know is [`GroupAction::Other`], not an
//! error: a newer server must not break an older client.

use magpie_proto::pb;
use magpie_types::{ConvId, GroupId, Millis, MsgId, Seq, UserId};
use serde_json::Value;

use crate::{EntryKind, Message};

/// What happened to a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupAction {
    /// The group was created (`by` the owner, with `users` as first members).
    Create,
    /// `users` were added `by` someone.
    Add,
    /// `users` joined.
    Join,
    /// `users`, who had asked to join, were let in `by` an admin.
    Approve,
    /// `users` left.
    Leave,
    /// `users` were removed `by` an admin.
    Kick,
    /// The group was dismissed: nobody is a member any more.
    Dismiss,
    /// Ownership passed to `users[0]`.
    TransferOwner,
    /// `users` became admins.
    SetAdmin,
    /// `users` are admins no more.
    UnsetAdmin,
    /// `users` were muted.
    Mute,
    /// `users` were unmuted.
    Unmute,
    /// Only admins may send now.
    MuteAll,
    /// Everyone may send again.
    UnmuteAll,
    /// The profile or settings changed (see [`GroupEvent::name`] and [`GroupEvent::json`]).
    Update,
    /// `users` asked to join (for admins to approve or reject).
    JoinRequest,
    /// An action this SDK does not know, by its name.
    Other(String),
}

impl GroupAction {
    fn parse(s: &str) -> Self {
        match s {
            "create" => Self::Create,
            "add" => Self::Add,
            "join" => Self::Join,
            "approve" => Self::Approve,
            "leave" => Self::Leave,
            "kick" => Self::Kick,
            "dismiss" => Self::Dismiss,
            "transfer_owner" => Self::TransferOwner,
            "set_admin" => Self::SetAdmin,
            "unset_admin" => Self::UnsetAdmin,
            "mute" => Self::Mute,
            "unmute" => Self::Unmute,
            "mute_all" => Self::MuteAll,
            "unmute_all" => Self::UnmuteAll,
            "update" => Self::Update,
            "join_request" => Self::JoinRequest,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A group event entry of a group's log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupEvent {
    /// The group's conversation.
    pub conversation: ConvId,
    /// The group.
    pub group: GroupId,
    /// The entry's position in the conversation.
    pub seq: Seq,
    /// The server's id of the entry.
    pub msg_id: MsgId,
    /// What happened.
    pub action: GroupAction,
    /// Who did it (the `by` field, or else the entry's sender), if known.
    pub by: Option<UserId>,
    /// Whom it concerns (the `users` field, plus a single `user` field if present).
    pub users: Vec<UserId>,
    /// The group's (new) name, for `create` and `update` events that carry one.
    pub name: Option<String>,
    /// When the server stored it (Unix milliseconds).
    pub server_time: Millis,
    /// The whole JSON object, for fields this SDK does not model.
    pub json: String,
}

impl GroupEvent {
    /// Parses a group event entry read through
    /// [`Client::history`](crate::Client::history) (or delivered as a message because it
    /// did not parse); `None` if it is not a well-formed group event.
    pub fn from_message(m: &Message) -> Option<Self> {
        if m.kind != EntryKind::GroupEvent {
            return None;
        }
        let raw = RawEntry {
            conversation: m.conversation.clone(),
            seq: m.seq,
            msg_id: m.msg_id,
            from: Some(m.from.clone()),
            server_time: m.server_time,
        };
        raw.parse(&m.content.body).ok()
    }

    /// Whether `user` is among the users the event concerns (or, for a `join` or `leave`
    /// that names nobody, did it).
    pub fn concerns(&self, user: &UserId) -> bool {
        if self.users.is_empty() && matches!(self.action, GroupAction::Join | GroupAction::Leave) {
            return self.by.as_ref() == Some(user);
        }
        self.users.contains(user)
    }

    /// How the event changes `user`'s membership: `Some(true)` if they became a member,
    /// `Some(false)` if they stopped being one, `None` if it does not touch it.
    pub fn membership_of(&self, user: &UserId) -> Option<bool> {
        match self.action {
            GroupAction::Create => {
                (self.by.as_ref() == Some(user) || self.users.contains(user)).then_some(true)
            }
            GroupAction::Add | GroupAction::Join | GroupAction::Approve => {
                self.concerns(user).then_some(true)
            }
            GroupAction::Leave | GroupAction::Kick => self.concerns(user).then_some(false),
            GroupAction::Dismiss => Some(false),
            _ => None,
        }
    }

    /// Parses a wire entry of kind `GROUP_EVENT`. The sender may be absent (a system event);
    /// the JSON must be an object with an `action`.
    pub(crate) fn from_pb(m: &pb::Message) -> Result<Self, String> {
        let conversation = ConvId::parse(&m.conversation)
            .map_err(|e| format!("conversation {:?}: {e}", m.conversation))?;
        let raw = RawEntry {
            conversation,
            seq: m.seq,
            msg_id: m.msg_id,
            from: UserId::new(m.from_user.as_str()).ok(),
            server_time: m.server_time_ms,
        };
        let body = m.content.as_ref().map(|c| &c.body[..]).unwrap_or_default();
        raw.parse(body)
    }
}

/// The envelope of a group event entry, before its JSON is read.
struct RawEntry {
    conversation: ConvId,
    seq: Seq,
    msg_id: MsgId,
    from: Option<UserId>,
    server_time: Millis,
}

impl RawEntry {
    fn parse(self, body: &[u8]) -> Result<GroupEvent, String> {
        let group = self
            .conversation
            .group_id()
            .ok_or_else(|| format!("group event in {}", self.conversation))?;
        let json = std::str::from_utf8(body).map_err(|_| "group event is not UTF-8")?;
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("group event JSON: {e}"))?;
        let Value::Object(obj) = &value else {
            return Err("group event JSON is not an object".into());
        };
        let action = obj
            .get("action")
            .and_then(Value::as_str)
            .ok_or("group event without an action")?;
        let user_of = |v: &Value| v.as_str().and_then(|s| UserId::new(s).ok());
        let mut users: Vec<UserId> = obj
            .get("users")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(user_of).collect())
            .unwrap_or_default();
        if let Some(user) = obj.get("user").and_then(user_of)
            && !users.contains(&user)
        {
            users.push(user);
        }
        Ok(GroupEvent {
            group,
            seq: self.seq,
            msg_id: self.msg_id,
            action: GroupAction::parse(action),
            by: obj.get("by").and_then(user_of).or(self.from),
            users,
            name: obj.get("name").and_then(Value::as_str).map(str::to_owned),
            server_time: self.server_time,
            conversation: self.conversation,
            json: json.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use magpie_proto::convert::text_content;

    fn entry(json: &str, from: &str) -> pb::Message {
        pb::Message {
            msg_id: 1,
            conversation: "g:team".into(),
            seq: 4,
            from_user: from.into(),
            content: Some(text_content(json)),
            kind: pb::EntryKind::GroupEvent as i32,
            ..Default::default()
        }
    }

    fn user(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn parses_known_fields_and_keeps_the_json() {
        let e = GroupEvent::from_pb(&entry(
            r#"{"action":"add","by":"alice","users":["bob","carol"],"extra":1}"#,
            "alice",
        ))
        .unwrap();
        assert_eq!(e.action, GroupAction::Add);
        assert_eq!(e.group, GroupId::new("team").unwrap());
        assert_eq!(e.by, Some(user("alice")));
        assert_eq!(e.users, [user("bob"), user("carol")]);
        assert!(e.json.contains("extra"));
        assert_eq!(e.membership_of(&user("bob")), Some(true));
        assert_eq!(e.membership_of(&user("alice")), None);

        let rename =
            GroupEvent::from_pb(&entry(r#"{"action":"update","name":"New"}"#, "bob")).unwrap();
        assert_eq!(rename.name.as_deref(), Some("New"));
        assert_eq!(
            rename.by,
            Some(user("bob")),
            "the sender when `by` is absent"
        );
    }

    #[test]
    fn membership_changes() {
        let leave = GroupEvent::from_pb(&entry(r#"{"action":"leave","by":"bob"}"#, "")).unwrap();
        assert_eq!(leave.membership_of(&user("bob")), Some(false));
        assert_eq!(leave.membership_of(&user("carol")), None);
        let kick =
            GroupEvent::from_pb(&entry(r#"{"action":"kick","by":"a","user":"c"}"#, "")).unwrap();
        assert_eq!(kick.membership_of(&user("c")), Some(false));
        let create =
            GroupEvent::from_pb(&entry(r#"{"action":"create","by":"a","users":["b"]}"#, ""))
                .unwrap();
        assert_eq!(create.membership_of(&user("a")), Some(true));
        let approve =
            GroupEvent::from_pb(&entry(r#"{"action":"approve","by":"a","users":["c"]}"#, ""))
                .unwrap();
        assert_eq!(approve.membership_of(&user("c")), Some(true));
        let dismiss = GroupEvent::from_pb(&entry(r#"{"action":"dismiss"}"#, "")).unwrap();
        assert_eq!(dismiss.membership_of(&user("anyone")), Some(false));
        let future = GroupEvent::from_pb(&entry(r#"{"action":"pin_message"}"#, "")).unwrap();
        assert_eq!(future.action, GroupAction::Other("pin_message".into()));
        assert_eq!(future.membership_of(&user("a")), None);
    }

    #[test]
    fn malformed_events_are_refused() {
        for json in ["", "[]", "{}", r#"{"action":3}"#, "not json"] {
            assert!(GroupEvent::from_pb(&entry(json, "a")).is_err(), "{json}");
        }
        let mut direct = entry(r#"{"action":"join"}"#, "a");
        direct.conversation = "p2p:a:b".into();
        assert!(GroupEvent::from_pb(&direct).is_err());
    }

    #[test]
    fn history_entries_parse_too() {
        let m = Message::from_pb(entry(r#"{"action":"join","users":["bob"]}"#, "bob")).unwrap();
        let e = GroupEvent::from_message(&m).unwrap();
        assert_eq!(e.action, GroupAction::Join);
        assert_eq!(e.seq, 4);
        let mut plain = m.clone();
        plain.kind = EntryKind::Message;
        assert_eq!(GroupEvent::from_message(&plain), None);
    }
}
