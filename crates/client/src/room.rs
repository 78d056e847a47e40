//! Live rooms as the application sees them: [`RoomInfo`] and [`RoomSettings`], what to
//! create ([`NewRoom`]) or change ([`RoomSettingsChange`]), the results of room operations
//! ([`RoomJoined`], [`RoomMembersPage`], [`RoomFetched`]), messages ([`RoomMessage`]) and
//! what moderators did ([`RoomNoticeKind`]). How to send is in
//! [`room_send`](crate::room_send).
//!
//! A live room stores no chat: membership is presence (a connection is in a room from its
//! join until it leaves, disconnects, is kicked or banned, or the room closes), and messages
//! go to whoever is in the room now. Messages come in three [`Priority`] levels: HIGH ones
//! (gifts, admin notices) are numbered by the room's `seq`, kept in a short log and never
//! dropped; NORMAL (chat) and LOW (likes) ones are best effort and may be dropped by the
//! server under load.

use magpie_proto::pb;
use magpie_types::{Content, Millis, MsgId, RoomId, Seq, UserId};

use crate::event::{content_lenient, empty_custom};

/// How a live-room message is delivered (the domain type of `magpie-types`).
pub use magpie_types::Priority;

/// A room's effective settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomSettings {
    /// Downstream budget per connection, messages per second (0: the app's default).
    pub budget_per_s: u32,
    /// Minimum interval between two messages of one sender, in ms (0: off; admins are
    /// exempt).
    pub slow_mode_ms: u32,
    /// Room-wide send limit, messages per second (0: the server's default).
    pub send_rate_per_s: u32,
    /// Only admins may speak.
    pub mute_all: bool,
    /// Members (not only admins) may send HIGH messages.
    pub members_may_send_high: bool,
}

impl RoomSettings {
    fn from_pb(s: Option<pb::RoomSettings>) -> Self {
        let s = s.unwrap_or_default();
        Self {
            budget_per_s: s.budget_per_s.unwrap_or(0),
            slow_mode_ms: s.slow_mode_ms.unwrap_or(0),
            send_rate_per_s: s.send_rate_per_s.unwrap_or(0),
            mute_all: s.mute_all.unwrap_or(false),
            members_may_send_high: s.members_may_send_high.unwrap_or(false),
        }
    }
}

/// A live room.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomInfo {
    /// The room.
    pub room: RoomId,
    /// Display name.
    pub name: String,
    /// The owner, when the server says.
    pub owner: Option<UserId>,
    /// The room's admins (besides the owner).
    pub admins: Vec<UserId>,
    /// Distinct users in the room now (on this server).
    pub online: u64,
    /// Connections in the room now.
    pub connections: u64,
    /// The `seq` of the room's last HIGH message (0: none yet).
    pub last_seq: Seq,
    /// The room is closed: nobody may join or send any more.
    pub closed: bool,
    /// The effective settings.
    pub settings: RoomSettings,
}

impl RoomInfo {
    pub(crate) fn from_pb(r: pb::RoomInfo) -> Result<Self, String> {
        Ok(Self {
            room: RoomId::new(r.room.as_str()).map_err(|e| format!("room {:?}: {e}", r.room))?,
            name: r.name,
            owner: UserId::new(r.owner).ok(),
            // A malformed admin is dropped rather than the room.
            admins: r
                .admins
                .into_iter()
                .filter_map(|u| UserId::new(u).ok())
                .collect(),
            online: r.online,
            connections: r.connections,
            last_seq: r.last_seq,
            closed: r.closed,
            settings: RoomSettings::from_pb(r.settings),
        })
    }
}

/// A room to create (see [`Client::create_room`](crate::Client::create_room)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewRoom {
    /// The id to use; `None` lets the server pick one.
    pub id: Option<RoomId>,
    /// Display name.
    pub name: String,
    /// Settings other than the default ones (its `name` is ignored: see [`NewRoom::name`]).
    pub settings: RoomSettingsChange,
}

impl NewRoom {
    /// A room named `name`, with default settings.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Uses this id instead of letting the server pick one.
    pub fn with_id(mut self, id: RoomId) -> Self {
        self.id = Some(id);
        self
    }

    /// Starts with these settings.
    pub fn with_settings(mut self, settings: RoomSettingsChange) -> Self {
        self.settings = settings;
        self
    }

    pub(crate) fn to_pb(&self) -> pb::RoomRequest {
        let mut settings = self.settings.to_pb();
        settings.name = None;
        pb::RoomRequest {
            room: self
                .id
                .as_ref()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
            op: Some(pb::room_request::Op::Create(pb::CreateRoom {
                name: self.name.clone(),
                settings: Some(settings),
            })),
        }
    }
}

/// Changes to a room's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomSettingsChange {
    /// Downstream budget per connection, messages per second (0: the app's default).
    pub budget_per_s: Option<u32>,
    /// Slow mode: minimum ms between two messages of one sender (0: off).
    pub slow_mode_ms: Option<u32>,
    /// Room-wide send limit, messages per second (0: the server's default).
    pub send_rate_per_s: Option<u32>,
    /// Only admins may speak.
    pub mute_all: Option<bool>,
    /// Members may send HIGH messages.
    pub members_may_send_high: Option<bool>,
    /// Display name.
    pub name: Option<String>,
}

impl RoomSettingsChange {
    /// Sets the downstream budget.
    pub fn budget_per_s(mut self, budget: u32) -> Self {
        self.budget_per_s = Some(budget);
        self
    }

    /// Sets slow mode (0: off).
    pub fn slow_mode_ms(mut self, ms: u32) -> Self {
        self.slow_mode_ms = Some(ms);
        self
    }

    /// Sets the room-wide send limit.
    pub fn send_rate_per_s(mut self, rate: u32) -> Self {
        self.send_rate_per_s = Some(rate);
        self
    }

    /// Lets only admins speak, or everyone again.
    pub fn mute_all(mut self, on: bool) -> Self {
        self.mute_all = Some(on);
        self
    }

    /// Lets members send HIGH messages, or only admins.
    pub fn members_may_send_high(mut self, on: bool) -> Self {
        self.members_may_send_high = Some(on);
        self
    }

    /// Renames the room.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub(crate) fn to_pb(&self) -> pb::RoomSettings {
        pb::RoomSettings {
            budget_per_s: self.budget_per_s,
            slow_mode_ms: self.slow_mode_ms,
            send_rate_per_s: self.send_rate_per_s,
            mute_all: self.mute_all,
            members_may_send_high: self.members_may_send_high,
            name: self.name.clone(),
        }
    }
}

/// The outcome of [`Client::join_room`](crate::Client::join_room).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomJoined {
    /// The room now.
    pub info: RoomInfo,
    /// The HIGH messages the join brought back (after the seq the client already had, or
    /// the one it asked for), in seq order. They are for information: each is also
    /// delivered as [`Event::Room`](crate::Event::Room), in its place, once (render from the
    /// event stream, not from here).
    pub missed: Vec<RoomMessage>,
    /// Some HIGH messages after that seq were no longer in the room's log (an
    /// [`Event::RoomGap`](crate::Event::RoomGap) says which).
    pub gap: bool,
}

/// A page of the users in a room, ordered by user id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomMembersPage {
    /// The users.
    pub users: Vec<UserId>,
    /// More follow: ask again with `after` = the last user.
    pub has_more: bool,
}

/// HIGH messages read from a room's log (see
/// [`Client::fetch_room`](crate::Client::fetch_room)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomFetched {
    /// The room now, when the server says.
    pub info: Option<RoomInfo>,
    /// The messages, in seq order.
    pub messages: Vec<RoomMessage>,
    /// Messages after the asked seq were no longer in the log.
    pub gap: bool,
    /// More follow the last one.
    pub has_more: bool,
}

/// A message of a live room.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomMessage {
    /// The room.
    pub room: RoomId,
    /// The server's message id.
    pub msg_id: MsgId,
    /// The sender.
    pub from: UserId,
    /// What it carries (content this SDK cannot interpret arrives as
    /// [`ContentType::Custom`](crate::ContentType::Custom)).
    pub content: Content,
    /// How it was delivered.
    pub priority: Priority,
    /// The room's `seq` of a HIGH message; `None` for NORMAL and LOW ones.
    pub seq: Option<Seq>,
    /// When the room accepted it (Unix milliseconds).
    pub server_time_ms: Millis,
}

impl RoomMessage {
    /// The content as text, for text messages.
    pub fn text(&self) -> Option<&str> {
        self.content.as_text()
    }

    pub(crate) fn from_pb(room: RoomId, m: pb::RoomMessage) -> Result<Self, String> {
        let from = UserId::new(m.from.as_str()).map_err(|e| format!("from {:?}: {e}", m.from))?;
        let seq = (m.seq != 0).then_some(m.seq);
        Ok(Self {
            room,
            msg_id: m.msg_id,
            from,
            content: m.content.map(content_lenient).unwrap_or_else(empty_custom),
            priority: priority_from_wire(m.priority, seq),
            seq,
            server_time_ms: m.server_time_ms,
        })
    }
}

/// A wire priority; an unknown one is HIGH if the message is numbered, else NORMAL.
pub(crate) fn priority_from_wire(code: i32, seq: Option<Seq>) -> Priority {
    Priority::from_code(code).unwrap_or(if seq.is_some() {
        Priority::High
    } else {
        Priority::Normal
    })
}

/// What a [`RoomNotice`](crate::Event::RoomNotice) says happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoomNoticeKind {
    /// The user was removed from the room (they may join again).
    Kicked,
    /// The user was removed from the room and may not join again.
    Banned,
    /// The room was closed.
    Closed,
    /// The user may not speak until the notice's `until_ms`.
    Muted,
    /// The user may speak again.
    Unmuted,
    /// A kind this SDK does not know.
    Unknown(String),
}

impl RoomNoticeKind {
    pub(crate) fn from_wire(kind: &str) -> Self {
        match kind {
            "kicked" => Self::Kicked,
            "banned" => Self::Banned,
            "closed" => Self::Closed,
            "muted" => Self::Muted,
            "unmuted" => Self::Unmuted,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// Whether the connection is out of the room (the client forgets it: no rejoin).
    pub fn removes(&self) -> bool {
        matches!(self, Self::Kicked | Self::Banned | Self::Closed)
    }

    /// The wire name (`kicked`, `banned`, …).
    pub fn name(&self) -> &str {
        match self {
            Self::Kicked => "kicked",
            Self::Banned => "banned",
            Self::Closed => "closed",
            Self::Muted => "muted",
            Self::Unmuted => "unmuted",
            Self::Unknown(s) => s,
        }
    }
}

/// Parses the messages of a join or fetch answer, dropping (and logging) malformed ones.
pub(crate) fn messages_from_pb(room: &RoomId, messages: &[pb::RoomMessage]) -> Vec<RoomMessage> {
    messages
        .iter()
        .filter_map(|m| {
            RoomMessage::from_pb(room.clone(), m.clone())
                .inspect_err(|e| tracing::warn!(%room, "ignoring a room message: {e}"))
                .ok()
        })
        .collect()
}

/// A moderation request.
pub(crate) fn moderate(
    room: &RoomId,
    user: &UserId,
    action: pb::room_moderate::Action,
) -> pb::RoomRequest {
    request(
        room,
        pb::room_request::Op::Moderate(pb::RoomModerate {
            user: user.as_str().to_owned(),
            action: Some(action),
        }),
    )
}

/// A request about `room`.
pub(crate) fn request(room: &RoomId, op: pb::room_request::Op) -> pb::RoomRequest {
    pb::RoomRequest {
        room: room.as_str().to_owned(),
        op: Some(op),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use magpie_proto::convert::text_content;

    #[test]
    fn room_info_parses_with_defaults_resolved() {
        let info = RoomInfo::from_pb(pb::RoomInfo {
            room: "live".into(),
            name: "Live".into(),
            owner: "alice".into(),
            admins: vec!["bob".into(), "not a user!".into()],
            online: 3,
            connections: 4,
            last_seq: 9,
            closed: false,
            settings: Some(pb::RoomSettings {
                slow_mode_ms: Some(500),
                members_may_send_high: Some(true),
                ..Default::default()
            }),
        })
        .unwrap();
        assert_eq!(info.owner, Some(UserId::new("alice").unwrap()));
        assert_eq!(info.admins, [UserId::new("bob").unwrap()]);
        assert_eq!(info.settings.slow_mode_ms, 500);
        assert_eq!(info.settings.budget_per_s, 0);
        assert!(info.settings.members_may_send_high);
        assert!(RoomInfo::from_pb(pb::RoomInfo::default()).is_err());
    }

    #[test]
    fn messages_parse_with_their_priority() {
        let room = RoomId::new("live").unwrap();
        let wire = |priority, seq| pb::RoomMessage {
            msg_id: 5,
            from: "bob".into(),
            content: Some(text_content("gift")),
            priority,
            seq,
            server_time_ms: 7,
        };
        let high = RoomMessage::from_pb(room.clone(), wire(1, 3)).unwrap();
        assert_eq!((high.priority, high.seq), (Priority::High, Some(3)));
        assert_eq!(high.text(), Some("gift"));
        let low = RoomMessage::from_pb(room.clone(), wire(3, 0)).unwrap();
        assert_eq!((low.priority, low.seq), (Priority::Low, None));
        let unknown = RoomMessage::from_pb(room.clone(), wire(9, 0)).unwrap();
        assert_eq!(unknown.priority, Priority::Normal);
        let mut bad = wire(2, 0);
        bad.from = String::new();
        assert!(RoomMessage::from_pb(room, bad).is_err());
    }

    #[test]
    fn requests_carry_every_field() {
        let new = NewRoom::named("Live")
            .with_id(RoomId::new("live").unwrap())
            .with_settings(RoomSettingsChange::default().slow_mode_ms(100).name("x"))
            .to_pb();
        assert_eq!(new.room, "live");
        let Some(pb::room_request::Op::Create(c)) = new.op else {
            panic!("a create");
        };
        assert_eq!(c.name, "Live");
        let settings = c.settings.unwrap();
        assert_eq!(settings.slow_mode_ms, Some(100));
        assert_eq!(settings.name, None, "the name is the create's");
        assert_eq!(settings.mute_all, None);
        assert_eq!(NewRoom::named("y").to_pb().room, "", "server picks the id");
    }

    #[test]
    fn notice_kinds_round_trip() {
        for name in ["kicked", "banned", "closed", "muted", "unmuted", "waved"] {
            assert_eq!(RoomNoticeKind::from_wire(name).name(), name);
        }
        assert!(RoomNoticeKind::Banned.removes());
        assert!(!RoomNoticeKind::Muted.removes());
        assert_eq!(
            RoomNoticeKind::from_wire("waved"),
            RoomNoticeKind::Unknown("waved".into())
        );
    }
}
