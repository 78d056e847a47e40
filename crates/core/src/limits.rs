//! Limits enforced by the server.

/// Limits, from configuration. Every one is checked before the corresponding allocation or
/// work happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted from a client, in bytes.
    pub max_frame_bytes: usize,
    /// Largest message content (body + metadata), in bytes.
    pub max_message_bytes: usize,
    /// Most metadata entries on one message.
    pub max_metadata_entries: usize,
    /// Largest page a client may ask for (pull, history, conversation list).
    pub max_page: usize,
    /// Sends per second one user may make, across all their devices (0: no limit). A flood
    /// guard far above human typing; beyond it sends get `RATE_LIMITED` and are retried.
    pub send_rate_per_user: u32,
    /// Sends a user may make in a burst above the steady rate.
    pub send_burst_per_user: u32,
    /// Most members of an ordinary group (an app may set its own).
    pub max_group_members: u32,
    /// Most members of a super group (an app may set its own).
    pub max_super_group_members: u32,
    /// Most users one group operation (create, add, kick) names.
    pub max_users_per_group_op: usize,
    /// Most users one message mentions.
    pub max_mentions: usize,
    /// Longest group name, notice, avatar URL or custom JSON, bytes.
    pub max_group_field_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_message_bytes: 32 * 1024,
            max_metadata_entries: 32,
            max_page: 200,
            send_rate_per_user: 500,
            send_burst_per_user: 1000,
            max_group_members: 3_000,
            max_super_group_members: 100_000,
            max_users_per_group_op: 1_000,
            max_mentions: 50,
            max_group_field_bytes: 4_096,
        }
    }
}

impl Limits {
    /// A page size clamped to `1..=max_page` (0 means "the maximum").
    pub fn page(&self, requested: u32) -> usize {
        let requested = usize::try_from(requested).unwrap_or(usize::MAX);
        if requested == 0 {
            self.max_page
        } else {
            requested.min(self.max_page)
        }
    }
}
