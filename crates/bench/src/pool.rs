//! The shards of a run, in this process or in worker processes.
//!
//! One process may hold only so many open files (20,000 on the benchmark machine), so a run
//! with more connections than one process should hold is split into shards, each run by a
//! worker: this same binary re-executed with its hidden worker subcommand (see
//! [`crate::worker`]). A worker speaks JSON lines on its stdin and stdout:
//!
//! ```text
//! coordinator → worker   {"scenario":"connect", ...spec}
//! worker → coordinator   {"connected":..., ...Ready}
//! coordinator → worker   go
//! worker → coordinator   {"scenario":"connect", ...ShardReport}
//! ```
//!
//! Closing the worker's stdin early aborts it, and every worker is killed when its handle
//! is dropped, so a coordinator that fails or hits its deadline leaves no process behind.
//! A run that fits in one process runs its single shard as a task instead.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::shard::{self, Control, Ready, Remote, ShardReport, ShardSpec};

/// How to start a worker process.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The program (normally this binary).
    pub program: PathBuf,
    /// Its arguments (normally the hidden worker subcommand).
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// This very executable with `args`.
    pub fn current_exe<I, S>(args: I) -> std::io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Ok(Self {
            program: std::env::current_exe()?,
            args: args.into_iter().map(Into::into).collect(),
        })
    }
}

/// The running shards of one run.
pub struct Pool {
    workers: Vec<Worker>,
}

enum Worker {
    Local {
        remote: Option<Remote>,
        task: JoinHandle<anyhow::Result<ShardReport>>,
    },
    Process(Box<ProcessWorker>),
}

struct ProcessWorker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Pool {
    /// Starts the shards: one as a task of this process, several as worker processes.
    pub async fn start(specs: Vec<ShardSpec>, command: &WorkerCommand) -> anyhow::Result<Self> {
        let mut workers = Vec::with_capacity(specs.len());
        if specs.len() == 1 {
            for spec in specs {
                let (control, remote) = Control::pair();
                workers.push(Worker::Local {
                    remote: Some(remote),
                    task: tokio::spawn(shard::run(spec, control)),
                });
            }
            return Ok(Self { workers });
        }
        for spec in specs {
            let mut child = Command::new(&command.program)
                .args(&command.args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting worker {}", command.program.display()))?;
            let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                bail!("worker started without pipes");
            };
            let mut line = serde_json::to_vec(&spec)?;
            line.push(b'\n');
            stdin
                .write_all(&line)
                .await
                .context("sending a worker its spec")?;
            stdin.flush().await?;
            workers.push(Worker::Process(Box::new(ProcessWorker {
                child,
                stdin: Some(stdin),
                stdout: BufReader::new(stdout).lines(),
            })));
        }
        Ok(Self { workers })
    }

    /// How many shards run.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Waits until every shard has opened its connections.
    pub async fn ready(&mut self) -> anyhow::Result<Vec<Ready>> {
        let mut all = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.iter_mut().enumerate() {
            let ready = match w {
                Worker::Local { remote, task } => {
                    let Some(r) = remote.as_mut() else {
                        bail!("shard {i} was already started");
                    };
                    match (&mut r.ready).await {
                        Ok(ready) => ready,
                        // The shard ended before it was ready: its error says why.
                        Err(_) => return Err(shard_error(task).await),
                    }
                }
                Worker::Process(p) => read_json(&mut p.stdout, i, "ready").await?,
            };
            all.push(ready);
        }
        Ok(all)
    }

    /// Tells every shard to start its phase.
    pub async fn go(&mut self) -> anyhow::Result<()> {
        for (i, w) in self.workers.iter_mut().enumerate() {
            match w {
                Worker::Local { remote, .. } => {
                    if let Some(r) = remote.take() {
                        let _ = r.go.send(());
                    }
                }
                Worker::Process(p) => {
                    let s = p.stdin.as_mut().context("worker stdin already closed")?;
                    s.write_all(b"go\n")
                        .await
                        .with_context(|| format!("telling worker {i} to go"))?;
                    s.flush().await?;
                }
            }
        }
        Ok(())
    }

    /// Waits for every shard's report.
    pub async fn finish(mut self) -> anyhow::Result<Vec<ShardReport>> {
        let mut reports = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.iter_mut().enumerate() {
            let report = match w {
                Worker::Local { task, .. } => task.await.context("shard task panicked")??,
                Worker::Process(p) => {
                    let report = read_json(&mut p.stdout, i, "report").await?;
                    drop(p.stdin.take());
                    let status = p.child.wait().await?;
                    if !status.success() {
                        bail!("worker {i} exited with {status}");
                    }
                    report
                }
            };
            reports.push(report);
        }
        Ok(reports)
    }
}

async fn shard_error(task: &mut JoinHandle<anyhow::Result<ShardReport>>) -> anyhow::Error {
    match task.await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => anyhow::anyhow!("the shard finished without reporting ready"),
        Err(e) => anyhow::anyhow!("the shard task failed: {e}"),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    lines: &mut Lines<BufReader<ChildStdout>>,
    worker: usize,
    what: &str,
) -> anyhow::Result<T> {
    let line = lines
        .next_line()
        .await
        .with_context(|| format!("reading worker {worker}'s {what}"))?
        .with_context(|| format!("worker {worker} exited before its {what} (see its stderr)"))?;
    serde_json::from_str(&line)
        .with_context(|| format!("worker {worker} sent a bad {what}: {line}"))
}
