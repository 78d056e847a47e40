//! Users known to exist, so a login or a send asks the store once per user.
//!
//! The set grows with every user seen since the process started, so an entry is a 128-bit
//! keyed hash of `(app, user)` (16 bytes) rather than the two ids (two heap strings and
//! about 100 bytes per user with the table's overhead). The two SipHash keys are random
//! per process, so a collision cannot be engineered; by chance, two of a billion users
//! collide with probability about 2^-69. A collision would only skip the store's
//! existence check for one user, never touch anyone's messages.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use magpie_types::{AppId, UserId};
use parking_lot::Mutex;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct KnownUsers {
    set: Mutex<HashSet<u128>>,
    high: RandomState,
    low: RandomState,
}

impl KnownUsers {
    fn key(&self, app: &AppId, user: &UserId) -> u128 {
        let id = (app.as_str(), user.as_str());
        (u128::from(self.high.hash_one(id)) << 64) | u128::from(self.low.hash_one(id))
    }

    /// Whether the user is known to exist.
    pub(crate) fn contains(&self, app: &AppId, user: &UserId) -> bool {
        self.set.lock().contains(&self.key(app, user))
    }

    /// Records that the user exists.
    pub(crate) fn insert(&self, app: &AppId, user: &UserId) {
        let key = self.key(app, user);
        self.set.lock().insert(key);
    }

    /// Forgets the user (deleted).
    pub(crate) fn remove(&self, app: &AppId, user: &UserId) {
        let key = self.key(app, user);
        self.set.lock().remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_app_and_user() {
        let k = KnownUsers::default();
        let (a, b) = (AppId::new("a").unwrap(), AppId::new("b").unwrap());
        let u = UserId::new("u").unwrap();
        k.insert(&a, &u);
        assert!(k.contains(&a, &u));
        assert!(!k.contains(&b, &u), "another app's user of the same name");
        assert!(!k.contains(&a, &UserId::new("v").unwrap()));
        k.remove(&a, &u);
        assert!(!k.contains(&a, &u));
    }
}
