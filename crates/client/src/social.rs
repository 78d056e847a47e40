//! Profiles, friends and blocks as the application sees them: [`Profile`], what to change
//! ([`ProfileUpdate`]), and what a friend notice says ([`SocialKind`]).
//!
//! Wire types are converted here, at the edge (see [`event`](crate::event) for the rule).

use magpie_proto::pb;
use magpie_types::UserId;

use crate::Event;

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Profile {
    /// The user.
    pub user: UserId,
    /// Display name (empty if none was set).
    pub nickname: String,
    /// Avatar URL (empty if none).
    pub avatar_url: String,
    /// Free-form JSON set by the application (empty if none).
    pub custom: String,
}

impl Profile {
    pub(crate) fn from_pb(p: pb::Profile) -> Result<Self, String> {
        Ok(Self {
            user: UserId::new(p.user.as_str()).map_err(|e| format!("profile {:?}: {e}", p.user))?,
            nickname: p.nickname,
            avatar_url: p.avatar_url,
            custom: p.custom,
        })
    }
}

/// Changes to the user's own profile; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProfileUpdate {
    /// The display name.
    pub nickname: Option<String>,
    /// The avatar URL.
    pub avatar_url: Option<String>,
    /// Free-form JSON for the application.
    pub custom: Option<String>,
}

impl ProfileUpdate {
    /// Sets [`ProfileUpdate::nickname`].
    pub fn nickname(mut self, nickname: impl Into<String>) -> Self {
        self.nickname = Some(nickname.into());
        self
    }

    /// Sets [`ProfileUpdate::avatar_url`].
    pub fn avatar_url(mut self, url: impl Into<String>) -> Self {
        self.avatar_url = Some(url.into());
        self
    }

    /// Sets [`ProfileUpdate::custom`].
    pub fn custom(mut self, json: impl Into<String>) -> Self {
        self.custom = Some(json.into());
        self
    }

    pub(crate) fn to_pb(&self) -> pb::ProfileUpdate {
        pb::ProfileUpdate {
            nickname: self.nickname.clone(),
            avatar_url: self.avatar_url.clone(),
            custom: self.custom.clone(),
        }
    }
}

/// What a friend notice ([`Event::Social`]) reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocialKind {
    /// The user asked to be friends (answer with
    /// [`Client::respond_friend`](crate::Client::respond_friend)).
    FriendRequest,
    /// The user accepted the request: they are friends now.
    FriendAccepted,
    /// The user declined the request.
    FriendDeclined,
    /// The user ended the friendship.
    FriendRemoved,
    /// A kind this SDK does not know, by its name: a newer server must not break an older
    /// client.
    Other(String),
}

impl SocialKind {
    fn parse(s: &str) -> Self {
        match s {
            "friend_request" => Self::FriendRequest,
            "friend_accepted" => Self::FriendAccepted,
            "friend_declined" => Self::FriendDeclined,
            "friend_removed" => Self::FriendRemoved,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// The event for a friend notice; one without a valid user is refused.
pub(crate) fn social_event(n: pb::SocialNotice) -> Result<Event, String> {
    let user = UserId::new(n.user.as_str()).map_err(|e| format!("user {:?}: {e}", n.user))?;
    Ok(Event::Social {
        kind: SocialKind::parse(&n.kind),
        user,
        message: n.message,
    })
}

/// Users of an answer; a malformed id costs itself, not the list.
pub(crate) fn users_from_pb(users: Vec<String>) -> Vec<UserId> {
    users
        .into_iter()
        .filter_map(|u| {
            UserId::new(u.as_str())
                .inspect_err(|e| tracing::warn!("ignoring user {u:?}: {e}"))
                .ok()
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_with_unknown_kinds_kept() {
        let notice = |kind: &str, user: &str| pb::SocialNotice {
            kind: kind.into(),
            user: user.into(),
            message: "hi".into(),
        };
        let Event::Social {
            kind,
            user,
            message,
        } = social_event(notice("friend_request", "bob")).unwrap()
        else {
            panic!("not a social event");
        };
        assert_eq!(kind, SocialKind::FriendRequest);
        assert_eq!(user, UserId::new("bob").unwrap());
        assert_eq!(message, "hi");
        for (wire, kind) in [
            ("friend_accepted", SocialKind::FriendAccepted),
            ("friend_declined", SocialKind::FriendDeclined),
            ("friend_removed", SocialKind::FriendRemoved),
            ("poke", SocialKind::Other("poke".into())),
        ] {
            assert!(
                matches!(social_event(notice(wire, "bob")), Ok(Event::Social { kind: k, .. }) if k == kind)
            );
        }
        assert!(social_event(notice("friend_request", "")).is_err());
    }

    #[test]
    fn profiles_and_updates_convert() {
        let update = ProfileUpdate::default().nickname("Al").custom("{}");
        let wire = update.to_pb();
        assert_eq!(wire.nickname.as_deref(), Some("Al"));
        assert_eq!(wire.avatar_url, None, "unset fields stay unchanged");
        let p = Profile::from_pb(pb::Profile {
            user: "al".into(),
            nickname: "Al".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.nickname, "Al");
        assert!(Profile::from_pb(pb::Profile::default()).is_err());
        assert_eq!(
            users_from_pb(vec!["a".into(), String::new(), "b".into()]).len(),
            2
        );
    }
}
