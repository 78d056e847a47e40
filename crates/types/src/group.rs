//! Group vocabulary: roles and join policies.

/// A member's role in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Role {
    /// An ordinary member.
    #[default]
    Member,
    /// May add, kick and mute members, speak while everyone is muted, mention everyone.
    Admin,
    /// The one owner: an admin who may also dismiss the group, transfer it and name admins.
    Owner,
}

impl Role {
    /// Stable numeric code, shared by the wire format and storage.
    pub fn code(self) -> u8 {
        match self {
            Self::Member => 0,
            Self::Admin => 1,
            Self::Owner => 2,
        }
    }

    /// The role for a code, if known.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Member),
            1 => Some(Self::Admin),
            2 => Some(Self::Owner),
            _ => None,
        }
    }

    /// Owner or admin.
    pub fn is_admin(self) -> bool {
        self >= Self::Admin
    }
}

/// Who may join a group and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JoinPolicy {
    /// Anyone in the app may join.
    #[default]
    Open,
    /// A join is a request that an admin approves or rejects.
    Approval,
    /// Only invitations add people.
    Invite,
}

impl JoinPolicy {
    /// Stable numeric code, shared by the wire format and storage.
    pub fn code(self) -> u8 {
        match self {
            Self::Open => 0,
            Self::Approval => 1,
            Self::Invite => 2,
        }
    }

    /// The policy for a code, if known.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Open),
            1 => Some(Self::Approval),
            2 => Some(Self::Invite),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_roundtrip() {
        for r in [Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(Role::from_code(u32::from(r.code())), Some(r));
        }
        for p in [JoinPolicy::Open, JoinPolicy::Approval, JoinPolicy::Invite] {
            assert_eq!(JoinPolicy::from_code(u32::from(p.code())), Some(p));
        }
        assert!(Role::Owner.is_admin() && Role::Admin.is_admin() && !Role::Member.is_admin());
        assert_eq!(Role::from_code(7), None);
    }
}
