//! `magpie read`: mark a conversation read, print the result.

use magpie_client::{Client, ConvId};
use serde_json::json;

use crate::cli::ReadArgs;
use crate::cmd::client_args;

/// Marks read and prints `{conversation, read_seq, unread, total_unread}`.
pub async fn run(a: ReadArgs) -> anyhow::Result<()> {
    let conv = ConvId::parse(&a.conversation)?;
    let (config, _) = client_args::config(&a.client)?;
    let (client, _events) = Client::connect(config).await?;
    let result = client.mark_read(&conv, a.seq).await;
    client.close().await;
    let r = result?;
    println!(
        "{}",
        json!({
            "conversation": r.conversation.as_str(),
            "read_seq": r.read_seq,
            "unread": r.unread,
            "total_unread": r.total_unread,
        })
    );
    Ok(())
}
