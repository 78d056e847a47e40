//! [`Recorder`]: drains a client's events in the background and lets a test wait for
//! conditions on what arrived, without sleeping.

use std::sync::Arc;
use std::time::Duration;

use magpie_client::{Event, Events, Message};
use magpie_types::{ConvId, Seq};
use std::sync::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long [`Recorder::wait_for_seq`] waits before failing the test.
pub const WAIT: Duration = Duration::from_secs(30);

/// Everything one client received.
#[derive(Debug, Default)]
struct Seen {
    messages: Vec<Message>,
    syncs: usize,
    errors: Vec<String>,
    /// Every log entry delivered (messages and group events), in arrival order.
    entries: Vec<(ConvId, Seq)>,
    /// Recalls reported: (conversation, recalled seq).
    recalls: Vec<(ConvId, Seq)>,
}

/// Records a client's events.
pub struct Recorder {
    seen: Arc<Mutex<Seen>>,
    notify: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Starts draining `events`.
    pub fn spawn(mut events: Events) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let notify = Arc::new(Notify::new());
        let (s, n) = (seen.clone(), notify.clone());
        let task = tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                {
                    let mut g = s.lock().expect("recorder lock");
                    match e {
                        Event::Message(m) => {
                            g.entries.push((m.conversation.clone(), m.seq));
                            g.messages.push(m);
                        }
                        Event::GroupEvent(e) => g.entries.push((e.conversation, e.seq)),
                        Event::Recalled {
                            conversation,
                            seq,
                            entry_seq,
                            ..
                        } => {
                            g.entries.push((conversation.clone(), entry_seq));
                            g.recalls.push((conversation, seq));
                        }
                        Event::SyncComplete => g.syncs += 1,
                        Event::Error(e) => g.errors.push(e.to_string()),
                        _ => {}
                    }
                }
                n.notify_waiters();
            }
        });
        Self { seen, notify, task }
    }

    /// The messages received so far, in arrival order.
    pub fn messages(&self) -> Vec<Message> {
        self.seen.lock().expect("recorder lock").messages.clone()
    }

    /// Every log entry delivered (messages and group events) as (conversation, seq), in
    /// arrival order.
    pub fn entries(&self) -> Vec<(ConvId, Seq)> {
        self.seen.lock().expect("recorder lock").entries.clone()
    }

    /// Waits until an entry of `conv` with seq ≥ `seq` (message or group event) arrived.
    pub async fn wait_for_entry(&self, conv: &ConvId, seq: Seq) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.notify.notified();
            let done = self
                .seen
                .lock()
                .expect("recorder lock")
                .entries
                .iter()
                .any(|(c, s)| c == conv && *s >= seq);
            if done {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {conv} entry {seq}");
            }
        }
    }

    /// Recalls reported so far: (conversation, recalled seq).
    pub fn recalls(&self) -> Vec<(ConvId, Seq)> {
        self.seen.lock().expect("recorder lock").recalls.clone()
    }

    /// Fatal errors reported by the client.
    pub fn errors(&self) -> Vec<String> {
        self.seen.lock().expect("recorder lock").errors.clone()
    }

    /// Waits until `pred` holds for the received messages; panics after [`WAIT`].
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[Message]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.notify.notified();
            if pred(&self.seen.lock().expect("recorder lock").messages) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got = self.messages().len();
                panic!("timed out waiting for {what} ({got} messages received)");
            }
        }
    }

    /// Waits until a message with `seq` ≥ `seq` of `conv` has arrived.
    pub async fn wait_for_seq(&self, conv: &ConvId, seq: Seq) {
        self.wait_until(&format!("{conv} seq {seq}"), |ms| {
            ms.iter().any(|m| &m.conversation == conv && m.seq >= seq)
        })
        .await;
    }

    /// Waits until at least `n` sync completions were reported.
    pub async fn wait_for_syncs(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.notify.notified();
            if self.seen.lock().expect("recorder lock").syncs >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {n} syncs");
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
