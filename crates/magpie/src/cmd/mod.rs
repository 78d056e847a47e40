//! The subcommands.

pub mod api;
pub mod app;
pub mod bench;
pub mod chat;
pub mod client_args;
pub mod config;
pub mod conversations;
pub mod group;
pub mod http;
pub mod json;
pub mod read;
pub mod room;
pub mod send;
pub mod serve;
pub mod tail;
pub mod token;
pub mod user;

use crate::cli::{Cli, Command};

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(a) => serve::run(a).await,
        Command::Token(a) => token::run(a),
        Command::Send(a) => send::run(a).await,
        Command::Tail(a) => tail::run(a).await,
        Command::Chat(a) => chat::run(a).await,
        Command::Group(a) => group::run(a).await,
        Command::Room(a) => room::run(a).await,
        Command::Conversations(a) => conversations::run(a).await,
        Command::Read(a) => read::run(a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::BenchWorker => bench::worker().await,
        Command::Api(a) => api::run(a).await,
        Command::App(a) => app::run(a).await,
        Command::User(a) => user::run(a).await,
        Command::Config(a) => config::run(a),
    }
}

/// A failure with its own exit status; other errors exit with 1.
#[derive(Debug)]
pub struct Failure {
    /// The exit status.
    pub code: u8,
    message: String,
}

impl Failure {
    /// A failure that exits with `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
