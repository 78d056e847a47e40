//! Who may do what in a group: the permission rules, in one table.
//!
//! Roles are ordered member < admin < owner. Acting on another member (kick, mute) needs a
//! role strictly above the target's, so admins manage members, the owner manages admins,
//! and nobody acts on the owner.

use magpie_types::Role;

/// A group operation that needs a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    /// Add members (invite).
    Add,
    /// Remove a member.
    Kick,
    /// Mute or unmute a member.
    Mute,
    /// Grant or revoke admin.
    SetAdmin,
    /// Hand the group to another member.
    Transfer,
    /// Dismiss the group.
    Dismiss,
    /// Change the profile or settings.
    Update,
    /// Mute or unmute everyone.
    MuteAll,
    /// See, approve or reject join requests.
    ReviewJoins,
    /// Mention everyone.
    MentionAll,
}

/// Whether `actor` may perform `action` (on a member whose role is `target`, for the
/// actions that have one). `members_can_invite` is the group's setting.
pub fn allowed(
    action: GroupAction,
    actor: Role,
    target: Option<Role>,
    members_can_invite: bool,
) -> bool {
    match action {
        GroupAction::Add => actor.is_admin() || members_can_invite,
        GroupAction::Kick | GroupAction::Mute => {
            actor.is_admin() && target.is_none_or(|t| t < actor)
        }
        GroupAction::SetAdmin => actor == Role::Owner && target != Some(Role::Owner),
        GroupAction::Transfer | GroupAction::Dismiss => actor == Role::Owner,
        GroupAction::Update
        | GroupAction::MuteAll
        | GroupAction::ReviewJoins
        | GroupAction::MentionAll => actor.is_admin(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GroupAction::*;
    use Role::*;

    #[test]
    fn the_permission_table() {
        assert!(allowed(Add, Admin, None, false));
        assert!(!allowed(Add, Member, None, false));
        assert!(allowed(Add, Member, None, true));
        assert!(allowed(Kick, Admin, Some(Member), false));
        assert!(!allowed(Kick, Admin, Some(Admin), false));
        assert!(allowed(Kick, Owner, Some(Admin), false));
        assert!(!allowed(Kick, Owner, Some(Owner), false));
        assert!(!allowed(Kick, Member, Some(Member), false));
        assert!(!allowed(Mute, Admin, Some(Owner), false));
        assert!(allowed(SetAdmin, Owner, Some(Member), false));
        assert!(!allowed(SetAdmin, Admin, Some(Member), false));
        assert!(!allowed(Dismiss, Admin, None, false));
        assert!(allowed(Transfer, Owner, None, false));
        assert!(allowed(MuteAll, Admin, None, false));
        assert!(!allowed(MentionAll, Member, None, true));
    }
}
