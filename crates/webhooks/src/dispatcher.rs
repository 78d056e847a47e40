//! The scheduler: which waiting event is tried next, and how many at once.
//!
//! One task owns all in-memory state (the waiting events per app, ordered by due time and
//! arrival); it starts attempts as tasks and learns their outcomes, so there is no shared
//! mutable state and no lock. Attempts run concurrently, bounded twice: at most
//! [`MAX_IN_FLIGHT`] in all, and at most [`MAX_IN_FLIGHT_PER_APP`] per app, taken
//! round-robin across apps. A dead receiver therefore holds a few slots for one request
//! timeout and then waits out its backoff without a slot, while other apps' events keep
//! flowing. Within an app, events start in order of due time, then arrival: ordering is
//! best effort, as a retried event falls behind newer ones.
//!
//! Waiting events are kept in memory with their bodies (the outbox holds the same, for
//! restarts); what bounds them is the retry budget, since an event leaves after
//! `max_attempts`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use magpie_service::AppRegistry;
use magpie_store::Store;
use magpie_types::AppId;
use reqwest::Client;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::delivery::{self, Outcome, now_ms};
use crate::outbox::Pending;

/// Most attempts in flight at once, across apps.
const MAX_IN_FLIGHT: usize = 64;
/// Most attempts in flight at once for one app.
const MAX_IN_FLIGHT_PER_APP: usize = 4;

/// What every part of the sender shares.
pub(crate) struct Context {
    /// Where the outbox lives.
    pub store: Arc<dyn Store>,
    /// The apps, read at each attempt for the current URL and secret.
    pub apps: AppRegistry,
    /// The one HTTP client.
    pub http: Client,
    /// Attempts, backoff, timeout.
    pub config: WebhookConfig,
}

/// Runs until `cancel`: delivers `initial` (loaded from the outbox) and every batch that
/// arrives. Attempts still running when it stops are abandoned; their records stay.
pub(crate) async fn run(
    cx: Arc<Context>,
    initial: Vec<Pending>,
    mut batches: mpsc::Receiver<Vec<Pending>>,
    cancel: CancellationToken,
) {
    let mut s = Scheduler {
        cx,
        apps: HashMap::new(),
        tasks: JoinSet::new(),
        running: HashMap::new(),
        arrivals: 0,
        tracked: 0,
        turn: 0,
    };
    let now_wall = now_ms();
    let now = Instant::now();
    for p in initial {
        let due = now + Duration::from_millis(p.next_attempt_ms.saturating_sub(now_wall));
        s.add(p, due);
    }
    loop {
        s.start_due();
        s.report();
        let wake = s.next_wake();
        let timer = async move {
            match wake {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some(done) = s.tasks.join_next_with_id(), if !s.tasks.is_empty() => s.finish(done),
            Some(batch) = batches.recv() => {
                let now = Instant::now();
                for p in batch {
                    s.add(p, now);
                }
            }
            () = timer => {}
        }
    }
    s.tasks.abort_all();
}

/// The in-memory state.
struct Scheduler {
    cx: Arc<Context>,
    apps: HashMap<AppId, AppQueue>,
    tasks: JoinSet<(Pending, Outcome)>,
    /// Which event each running task carries, to account for a task that panicked.
    running: HashMap<Id, (AppId, String)>,
    /// Arrival counter: the tie-break after due time.
    arrivals: u64,
    /// Events waiting or in flight (the `magpie_webhook_pending` gauge).
    tracked: usize,
    /// Which app `start_due` begins with (modulo the number of apps).
    turn: usize,
}

/// One app's events.
#[derive(Default)]
struct AppQueue {
    /// Waiting events by (due, arrival).
    waiting: BTreeMap<(Instant, u64), Pending>,
    /// Ids waiting or in flight: an event emitted again while pending is not doubled.
    ids: HashSet<String>,
    /// Attempts running.
    in_flight: usize,
}

impl Scheduler {
    fn add(&mut self, p: Pending, due: Instant) {
        let q = self.apps.entry(p.app.clone()).or_default();
        if !q.ids.insert(p.id.clone()) {
            return;
        }
        self.arrivals += 1;
        q.waiting.insert((due, self.arrivals), p);
        self.tracked += 1;
    }

    /// Starts every due event the bounds allow, one per app per round. Each call begins
    /// its rounds at a different app, so that when the global bound binds, the same apps
    /// are not always first.
    fn start_due(&mut self) {
        let now = Instant::now();
        let mut queues: Vec<&mut AppQueue> = self.apps.values_mut().collect();
        if queues.is_empty() {
            return;
        }
        self.turn = self.turn.wrapping_add(1);
        let first = self.turn % queues.len();
        queues.rotate_left(first);
        loop {
            let mut started = false;
            for q in queues.iter_mut() {
                if self.tasks.len() >= MAX_IN_FLIGHT {
                    return;
                }
                if q.in_flight >= MAX_IN_FLIGHT_PER_APP {
                    continue;
                }
                let Some(entry) = q.waiting.first_entry() else {
                    continue;
                };
                if entry.key().0 > now {
                    continue;
                }
                let p = entry.remove();
                q.in_flight += 1;
                started = true;
                let cx = self.cx.clone();
                let key = (p.app.clone(), p.id.clone());
                let handle = self
                    .tasks
                    .spawn(async move { delivery::attempt(&cx, p).await });
                self.running.insert(handle.id(), key);
            }
            if !started {
                return;
            }
        }
    }

    /// When the next event may start, if a slot would be free for it.
    fn next_wake(&self) -> Option<Instant> {
        if self.tasks.len() >= MAX_IN_FLIGHT {
            return None;
        }
        self.apps
            .values()
            .filter(|q| q.in_flight < MAX_IN_FLIGHT_PER_APP)
            .filter_map(|q| q.waiting.keys().next().map(|k| k.0))
            .min()
    }

    fn finish(&mut self, done: Result<(Id, (Pending, Outcome)), tokio::task::JoinError>) {
        let (task, result) = match done {
            Ok((task, r)) => (task, Some(r)),
            Err(e) => (e.id(), None),
        };
        let Some((app, id)) = self.running.remove(&task) else {
            return;
        };
        let Some(q) = self.apps.get_mut(&app) else {
            return;
        };
        q.in_flight = q.in_flight.saturating_sub(1);
        match result {
            Some((p, Outcome::Retry(wait))) => {
                self.arrivals += 1;
                q.waiting.insert((Instant::now() + wait, self.arrivals), p);
            }
            Some((_, Outcome::Delivered | Outcome::Dropped)) => {
                q.ids.remove(&id);
                self.tracked = self.tracked.saturating_sub(1);
            }
            None => {
                // The attempt panicked: its record stays in the outbox for the next start.
                tracing::error!(%app, event = %id, "webhook delivery task failed");
                q.ids.remove(&id);
                self.tracked = self.tracked.saturating_sub(1);
            }
        }
        if q.waiting.is_empty() && q.in_flight == 0 {
            self.apps.remove(&app);
        }
    }

    fn report(&self) {
        metrics::gauge!("magpie_webhook_pending").set(self.tracked as f64);
    }
}
