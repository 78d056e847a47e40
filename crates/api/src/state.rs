//! [`ApiState`]: what every handler shares.

use std::collections::HashSet;
use std::sync::Arc;

use magpie_service::Service;
use parking_lot::Mutex;

/// The state of the API's routers. Cheap to clone (shared).
#[derive(Clone)]
pub struct ApiState {
    /// The service the routes call.
    pub service: Arc<Service>,
    /// The admin key (`None`: the admin API is off).
    pub admin_key: Option<Arc<str>>,
    /// `(app, key)` of the idempotent requests in flight (see `idempotency`).
    pub inflight: Arc<Mutex<HashSet<(String, String)>>>,
}

impl ApiState {
    /// State over `service`.
    pub fn new(service: Arc<Service>, admin_key: Option<String>) -> Self {
        Self {
            service,
            // An empty key would let an empty bearer token in: it means "off".
            admin_key: admin_key.filter(|k| !k.is_empty()).map(Arc::from),
            inflight: Arc::default(),
        }
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("admin_api", &self.admin_key.is_some())
            .finish_non_exhaustive()
    }
}
