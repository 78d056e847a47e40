//! The subcommands.

pub mod bench;
pub mod chat;
pub mod client_args;
pub mod conversations;
pub mod group;
pub mod json;
pub mod read;
pub mod room;
pub mod send;
pub mod serve;
pub mod tail;
pub mod token;

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
    }
}
