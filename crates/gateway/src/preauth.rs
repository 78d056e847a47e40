//! The per-IP cap on unauthenticated connections.
//!
//! A connection holds a [`PreauthPermit`] from accept until it authenticates (or closes), so
//! one address cannot exhaust the server with connections that never say `Hello`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Counts pre-authentication connections per IP.
#[derive(Debug)]
pub struct PreauthLimiter {
    max: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Held while a connection is unauthenticated; releases its slot on drop.
#[derive(Debug)]
pub struct PreauthPermit {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PreauthLimiter {
    /// A limiter allowing `max` unauthenticated connections per IP.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            counts: Arc::default(),
        }
    }

    /// A permit for `ip`, or `None` if the address is at its cap.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<PreauthPermit> {
        let mut counts = self.counts.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PreauthPermit {
            ip,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for PreauthPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_and_release() {
        let l = PreauthLimiter::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = l.try_acquire(ip).unwrap();
        let _b = l.try_acquire(ip).unwrap();
        assert!(l.try_acquire(ip).is_none());
        assert!(l.try_acquire("127.0.0.2".parse().unwrap()).is_some());
        drop(a);
        assert!(l.try_acquire(ip).is_some());
    }
}
