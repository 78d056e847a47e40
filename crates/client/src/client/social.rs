//! Commands about users rather than conversations: presence, profiles, friends and blocks.
//! Each is one request answered by one result.
//!
//! Requests that start or end a relationship (a friend request, an answer to one, removing a
//! friend) notify the other user, so they are written at most once: a connection lost before
//! the answer fails them with [`ClientError::Interrupted`]. Setting values (profile, block)
//! and reads are idempotent and retried on the next connection like other queries.

use magpie_proto::pb::social_request::Op;
use magpie_proto::{Body, pb};
use magpie_types::UserId;

use super::Client;
use crate::presence::presence_list;
use crate::social::users_from_pb;
use crate::{ClientError, Profile, ProfileUpdate, UserPresence};

impl Client {
    /// Subscribes to the presence of `users` (replacing the previous subscription; an empty
    /// list ends it) and returns their presence now. Changes then arrive as
    /// [`Event::Presence`](crate::Event::Presence) — for friends too, without subscribing.
    ///
    /// The server keeps the subscription per connection; the client sends the last one the
    /// server accepted again after every reconnect, and reports everyone's presence anew
    /// then.
    pub async fn subscribe_presence(
        &self,
        users: &[UserId],
    ) -> Result<Vec<UserPresence>, ClientError> {
        let request = Body::SubscribePresence(pb::SubscribePresence {
            users: users.iter().map(|u| u.as_str().to_owned()).collect(),
        });
        match self.query(request, true).await? {
            Body::PresenceList(list) => Ok(presence_list(list)),
            _ => Err(ClientError::Protocol(
                "unexpected answer to a presence subscription".into(),
            )),
        }
    }

    /// Changes the user's own profile; unset fields stay as they are.
    pub async fn set_profile(&self, update: ProfileUpdate) -> Result<(), ClientError> {
        self.social(Op::SetProfile(update.to_pb()), true).await?;
        Ok(())
    }

    /// The profiles of `users` (users without one are left out).
    pub async fn get_profiles(&self, users: &[UserId]) -> Result<Vec<Profile>, ClientError> {
        let list = pb::UserList {
            users: users.iter().map(|u| u.as_str().to_owned()).collect(),
        };
        let result = self.social(Op::GetProfiles(list), true).await?;
        Ok(result
            .profiles
            .into_iter()
            .filter_map(|p| {
                Profile::from_pb(p)
                    .inspect_err(|e| tracing::warn!("ignoring a profile: {e}"))
                    .ok()
            })
            .collect())
    }

    /// Asks `user` to be friends, with a message for them; they receive an
    /// [`Event::Social`](crate::Event::Social) of kind
    /// [`SocialKind::FriendRequest`](crate::SocialKind::FriendRequest). Returns whether the
    /// two are friends now (they had asked the user too, so this accepted at once).
    pub async fn send_friend_request(
        &self,
        user: &UserId,
        message: impl Into<String>,
    ) -> Result<bool, ClientError> {
        let request = pb::FriendRequest {
            user: user.as_str().to_owned(),
            message: message.into(),
        };
        Ok(self
            .social(Op::FriendRequest(request), false)
            .await?
            .friends)
    }

    /// Accepts or declines `user`'s friend request; they are told.
    pub async fn respond_friend(&self, user: &UserId, accept: bool) -> Result<(), ClientError> {
        let response = pb::FriendResponse {
            user: user.as_str().to_owned(),
            accept,
        };
        self.social(Op::FriendResponse(response), false).await?;
        Ok(())
    }

    /// Ends the friendship with `user`; they are told.
    pub async fn remove_friend(&self, user: &UserId) -> Result<(), ClientError> {
        let op = Op::RemoveFriend(user.as_str().to_owned());
        self.social(op, false).await?;
        Ok(())
    }

    /// The user's friends.
    pub async fn friends(&self) -> Result<Vec<UserId>, ClientError> {
        self.social_users(Op::ListFriends(pb::Empty {})).await
    }

    /// The users whose friend requests wait for the user's answer.
    pub async fn friend_requests(&self) -> Result<Vec<UserId>, ClientError> {
        self.social_users(Op::ListFriendRequests(pb::Empty {}))
            .await
    }

    /// Blocks (`blocked`) or unblocks `user`: a blocked user's 1:1 messages to the user are
    /// refused with [`ErrorCode::Blocked`](crate::ErrorCode::Blocked).
    pub async fn block(&self, user: &UserId, blocked: bool) -> Result<(), ClientError> {
        let block = pb::BlockUser {
            user: user.as_str().to_owned(),
            blocked,
        };
        self.social(Op::Block(block), true).await?;
        Ok(())
    }

    /// The users the user blocked.
    pub async fn blocked(&self) -> Result<Vec<UserId>, ClientError> {
        self.social_users(Op::ListBlocked(pb::Empty {})).await
    }

    async fn social_users(&self, op: Op) -> Result<Vec<UserId>, ClientError> {
        Ok(users_from_pb(self.social(op, true).await?.users))
    }

    async fn social(&self, op: Op, idempotent: bool) -> Result<pb::SocialResult, ClientError> {
        let request = Body::Social(pb::SocialRequest { op: Some(op) });
        match self.query(request, idempotent).await? {
            Body::SocialResult(r) => Ok(r),
            _ => Err(ClientError::Protocol(
                "unexpected answer to a social request".into(),
            )),
        }
    }
}
