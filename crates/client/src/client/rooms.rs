//! Live-room commands. Joining is the connection task's business (it joins every room again
//! after a reconnect, after the HIGH seq it has); the rest are `RoomRequest`s answered by a
//! `RoomResult`, or a `RoomSend` answered by a `RoomSendAck`.
//!
//! Creating, closing and moderating are not idempotent (they notify people), so they are
//! written at most once: a connection lost before the answer fails them with
//! [`ClientError::Interrupted`]. Reads and settings are retried on the next connection like
//! other queries.

use std::time::Duration;

use magpie_proto::pb::room_moderate::Action;
use magpie_proto::pb::room_request::Op;
use magpie_proto::{Body, pb};
use magpie_types::{Content, RoomId, Seq, UserId};
use tokio::sync::oneshot;

use super::Client;
use crate::driver::Command;
use crate::outbox::Outgoing;
use crate::room::{messages_from_pb, moderate, request};
use crate::room_send::RoomDraft;
use crate::{
    ClientError, NewRoom, RoomFetched, RoomInfo, RoomJoined, RoomMembersPage, RoomSendAck,
    RoomSendOptions, RoomSettingsChange,
};

impl Client {
    /// Creates a live room owned by the user and returns it (with the id the server picked,
    /// if none was given). Creating does not join: see [`Client::join_room`]. Fails with
    /// [`ErrorCode::AlreadyExists`](crate::ErrorCode::AlreadyExists) if the id is taken.
    pub async fn create_room(&self, room: NewRoom) -> Result<RoomInfo, ClientError> {
        let result = self.room_op(room.to_pb(), false).await?;
        room_info(result.info, "create")
    }

    /// Joins a live room: from now on its messages arrive as
    /// [`Event::Room`](crate::Event::Room) (HIGH ones from the room's current `last_seq`
    /// on), until [`Client::leave_room`] or a kick, ban or close
    /// ([`Event::RoomNotice`](crate::Event::RoomNotice)). The client joins it again after
    /// every reconnect, asking for the HIGH messages it missed meanwhile; they arrive in
    /// order, each once.
    ///
    /// Joining a room the client is already in is harmless: it answers with the room now.
    /// Fails with [`ErrorCode::NotFound`](crate::ErrorCode::NotFound) (no such room, or it
    /// is closed) or [`ErrorCode::Banned`](crate::ErrorCode::Banned).
    pub async fn join_room(&self, room: &RoomId) -> Result<RoomJoined, ClientError> {
        self.join_room_since(room, 0).await
    }

    /// Joins a live room, asking for the HIGH messages after `since_seq` still in its short
    /// log too (say, the last seq the application showed before it restarted). They are
    /// delivered first, in order, as [`Event::Room`](crate::Event::Room) (and listed in
    /// [`RoomJoined::missed`]); [`Event::RoomGap`](crate::Event::RoomGap) says if some were
    /// no longer there. If the client is already in the room, `since_seq` is ignored: it
    /// knows what it delivered.
    pub async fn join_room_since(
        &self,
        room: &RoomId,
        since_seq: Seq,
    ) -> Result<RoomJoined, ClientError> {
        let run = async {
            let (reply, rx) = oneshot::channel();
            self.command(Command::JoinRoom {
                room: room.clone(),
                since: since_seq,
                reply,
            })
            .await?;
            rx.await.map_err(|_| ClientError::Closed)?
        };
        tokio::time::timeout(self.inner.request_timeout, run)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Leaves a live room: its events stop at once and it is not joined again after a
    /// reconnect. (Presence ends with the connection anyway, so a connection lost before the
    /// answer is as good as one.)
    pub async fn leave_room(&self, room: &RoomId) -> Result<(), ClientError> {
        self.command(Command::ForgetRoom(room.clone())).await?;
        match self
            .room_op(request(room, Op::Leave(pb::Empty {})), false)
            .await
        {
            Ok(_) | Err(ClientError::Interrupted) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Closes a live room (its owner): everyone in it receives a
    /// [`RoomNoticeKind::Closed`](crate::RoomNoticeKind::Closed) notice and nobody may join
    /// or send any more.
    pub async fn close_room(&self, room: &RoomId) -> Result<(), ClientError> {
        self.room_op(request(room, Op::Close(pb::Empty {})), false)
            .await?;
        self.command(Command::ForgetRoom(room.clone())).await
    }

    /// The room now: settings, admins, who is online, its last HIGH seq.
    pub async fn room_info(&self, room: &RoomId) -> Result<RoomInfo, ClientError> {
        let result = self
            .room_op(request(room, Op::Get(pb::Empty {})), true)
            .await?;
        room_info(result.info, "get")
    }

    /// A page of the users in the room now, ordered by user id: those after `after`
    /// (`None`: from the first), at most `limit` (0: the server's default).
    pub async fn room_members(
        &self,
        room: &RoomId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<RoomMembersPage, ClientError> {
        let page = pb::RoomMembersPage {
            after: after.map(|u| u.as_str().to_owned()).unwrap_or_default(),
            limit,
        };
        let result = self.room_op(request(room, Op::Members(page)), true).await?;
        Ok(RoomMembersPage {
            users: result
                .users
                .into_iter()
                .filter_map(|u| UserId::new(u).ok())
                .collect(),
            has_more: result.has_more,
        })
    }

    /// Reads the HIGH messages after `since_seq` still in the room's short log (at most
    /// `limit`), e.g. the recent gifts for a late joiner. The answer is for the caller only:
    /// it does not touch the event stream.
    pub async fn fetch_room(
        &self,
        room: &RoomId,
        since_seq: Seq,
        limit: u32,
    ) -> Result<RoomFetched, ClientError> {
        let fetch = pb::FetchRoom { since_seq, limit };
        let result = self.room_op(request(room, Op::Fetch(fetch)), true).await?;
        let info = result
            .info
            .map(RoomInfo::from_pb)
            .transpose()
            .map_err(ClientError::Protocol)?;
        Ok(RoomFetched {
            info,
            messages: messages_from_pb(room, &result.messages),
            gap: result.gap,
            has_more: result.has_more,
        })
    }

    /// Sends text to a live room with the default options (see [`Client::send_room`]).
    pub async fn send_room_text(
        &self,
        room: &RoomId,
        text: impl Into<String>,
    ) -> Result<RoomSendAck, ClientError> {
        self.send_room(room, Content::text(text), RoomSendOptions::default())
            .await
    }

    /// Sends a message to a live room the client has joined. It arrives, like everyone's,
    /// as an [`Event::Room`](crate::Event::Room).
    ///
    /// With [`Priority::High`](crate::Priority::High) (admins, or members if the room
    /// allows it) the send carries a client message id and is retried under it after a
    /// lost connection or an [`ErrorCode::Unavailable`](crate::ErrorCode::Unavailable)
    /// answer, until [`RoomSendOptions::timeout`]; the room accepts it at most once. Other
    /// priorities are best effort: a connection lost before the ack fails the send with
    /// [`ClientError::Interrupted`] (it may or may not have been sent).
    ///
    /// Refusals: [`ErrorCode::Forbidden`](crate::ErrorCode::Forbidden) (not joined, or HIGH
    /// not allowed), [`ErrorCode::Muted`](crate::ErrorCode::Muted),
    /// [`ErrorCode::SlowMode`](crate::ErrorCode::SlowMode) and
    /// [`ErrorCode::RateLimited`](crate::ErrorCode::RateLimited) (see
    /// [`ClientError::retry_after`]), [`ErrorCode::NotFound`](crate::ErrorCode::NotFound)
    /// (no such room, or closed).
    pub async fn send_room(
        &self,
        room: &RoomId,
        content: Content,
        options: RoomSendOptions,
    ) -> Result<RoomSendAck, ClientError> {
        let (reply, rx) = oneshot::channel();
        let draft = RoomDraft::new(room.clone(), content, options);
        self.command(Command::Send(Outgoing::Room { draft, reply }))
            .await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Mutes a user in the room for `duration` (admins); [`Duration::ZERO`] lifts the mute.
    pub async fn mute_in_room(
        &self,
        room: &RoomId,
        user: &UserId,
        duration: Duration,
    ) -> Result<(), ClientError> {
        let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 && !duration.is_zero() {
            // 0 would lift the mute: a sub-millisecond mute is the shortest real one.
            ms = 1;
        }
        self.moderate(room, user, Action::MuteMs(ms)).await
    }

    /// Removes a user's connections from the room (admins); they may join again.
    pub async fn kick_from_room(&self, room: &RoomId, user: &UserId) -> Result<(), ClientError> {
        self.moderate(room, user, Action::Kick(pb::Empty {})).await
    }

    /// Removes a user from the room and refuses their later joins (admins).
    pub async fn ban_from_room(&self, room: &RoomId, user: &UserId) -> Result<(), ClientError> {
        self.moderate(room, user, Action::Ban(pb::Empty {})).await
    }

    /// Lifts a ban (admins).
    pub async fn unban_from_room(&self, room: &RoomId, user: &UserId) -> Result<(), ClientError> {
        self.moderate(room, user, Action::Unban(pb::Empty {})).await
    }

    /// Makes a user an admin of the room, or a plain member again (the owner).
    pub async fn set_room_admin(
        &self,
        room: &RoomId,
        user: &UserId,
        admin: bool,
    ) -> Result<(), ClientError> {
        self.moderate(room, user, Action::Admin(admin)).await
    }

    /// Changes the room's settings or name (admins); unset fields stay as they are. Returns
    /// the room afterwards.
    pub async fn update_room(
        &self,
        room: &RoomId,
        change: RoomSettingsChange,
    ) -> Result<RoomInfo, ClientError> {
        let result = self
            .room_op(request(room, Op::Settings(change.to_pb())), true)
            .await?;
        room_info(result.info, "settings")
    }

    async fn moderate(
        &self,
        room: &RoomId,
        user: &UserId,
        action: Action,
    ) -> Result<(), ClientError> {
        self.room_op(moderate(room, user, action), false).await?;
        Ok(())
    }

    async fn room_op(
        &self,
        request: pb::RoomRequest,
        idempotent: bool,
    ) -> Result<pb::RoomResult, ClientError> {
        match self.query(Body::Room(request), idempotent).await? {
            Body::RoomResult(result) => Ok(result),
            _ => Err(ClientError::Protocol(
                "unexpected answer to a room operation".into(),
            )),
        }
    }
}

/// The room of an answer that must carry it.
fn room_info(info: Option<pb::RoomInfo>, op: &str) -> Result<RoomInfo, ClientError> {
    let info =
        info.ok_or_else(|| ClientError::Protocol(format!("{op} answered without the room")))?;
    RoomInfo::from_pb(info).map_err(ClientError::Protocol)
}
