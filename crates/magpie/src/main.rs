//! `magpie`: the one binary.
//!
//! - `serve`: run a node ([`cmd::serve`]).
//! - `token`: mint a user token ([`cmd::token`]).
//! - `send`, `tail`, `chat`: client commands on the Rust SDK ([`cmd::send`], [`cmd::tail`],
//!   [`cmd::chat`]); shared client flags in [`cmd::client_args`].
//! - `group`, `room`, `conversations`, `read`: groups, live rooms, the conversation list
//!   ([`cmd::group`], [`cmd::room`], [`cmd::conversations`], [`cmd::read`]).
//! - `api`, `app`, `user`: the REST API — any endpoint, app management, bulk user import
//!   ([`cmd::api`], [`cmd::app`], [`cmd::user`]); the HTTP client in [`cmd::http`].
//! - `config check`: load and print the static configuration ([`cmd::config`]).
//! - `bench`: the load generator ([`cmd::bench`], on `magpie-bench`).
//!
//! Output meant for scripts is JSON on stdout; logs go to stderr.

mod cli;
mod cmd;

/// mimalloc instead of the system allocator: the p2p profile spent ~27 % of the server's
/// CPU in glibc malloc (mostly the store writer thread and per-message buffers), and a
/// thread-caching allocator roughly halved the CPU per message (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

/// Threads for blocking work: the embedded store's reads (each well under a millisecond)
/// and its shutdown. Tokio's default of 512 lets a burst of connections start over a
/// hundred threads, and each one's stack and allocator cache stayed resident: about
/// 110 MB of 190 MB at 19,000 new connections (BENCHMARKS.md). Reads beyond this many
/// wait in the pool's queue instead.
const MAX_BLOCKING_THREADS: usize = 16;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("magpie: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("magpie: {e:#}");
            match e.downcast_ref::<cmd::Failure>() {
                Some(f) => std::process::ExitCode::from(f.code),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}
