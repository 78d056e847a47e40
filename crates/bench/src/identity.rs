//! Who the bench connects as: the app, its secret, and one user per connection.
//!
//! Every run picks a fresh run id and names its users `b<run>-<role><index>`, so a rerun
//! against the same server never meets the conversations (and seqs) of an earlier run, and
//! two runs never replace each other's sessions. A user who connects with a valid token is
//! registered by the server, which is why receivers connect before anyone sends to them.

use std::time::{SystemTime, UNIX_EPOCH};

use magpie_types::{AppId, DeviceId, UserId};
use serde::{Deserialize, Serialize};

/// Token validity: long enough for any bounded run.
const TOKEN_TTL_SECS: u64 = 24 * 3600;

/// The app the bench users belong to, and how to mint their tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct Identity {
    /// The app id.
    pub app: String,
    /// The app's secret (HS256). Passed to worker processes on stdin, never as an argument,
    /// so it does not show in the process list.
    pub secret: String,
    /// This run's id, the prefix of every user name.
    pub run: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("app", &self.app)
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// An identity for a new run with a random id.
    pub fn new_run(app: String, secret: String) -> Self {
        Self {
            app,
            secret,
            run: format!("{:08x}", rand::random::<u32>()),
        }
    }

    /// The user name for `role` (one letter) and `index`.
    pub fn user(&self, role: char, index: u64) -> String {
        format!("b{}-{role}{index}", self.run)
    }

    /// A token for `user` on device `bench`.
    pub fn token(&self, user: &str) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(magpie_core::auth::mint(
            &AppId::new(self.app.as_str())?,
            self.secret.as_bytes(),
            &UserId::new(user)?,
            &DeviceId::new("bench")?,
            now,
            TOKEN_TTL_SECS,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_ids_and_distinct_per_run() {
        let a = Identity::new_run("demo".into(), "s".repeat(20));
        let name = a.user('s', 123_456);
        assert!(UserId::new(name.as_str()).is_ok());
        assert!(a.token(&name).is_ok());
        let b = Identity::new_run("demo".into(), "s".repeat(20));
        // Two random 32-bit run ids collide with probability 2^-32.
        assert_ne!(a.user('r', 1), b.user('r', 1));
    }
}
