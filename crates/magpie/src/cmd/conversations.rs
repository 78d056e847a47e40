//! `magpie conversations`: the user's conversation list as one JSON array.

use magpie_client::Client;

use crate::cli::ConversationsArgs;
use crate::cmd::{client_args, json};

/// Lists and prints, pinned first, then newest activity first.
pub async fn run(a: ConversationsArgs) -> anyhow::Result<()> {
    let (config, _) = client_args::config(&a.client)?;
    let (client, _events) = Client::connect(config).await?;
    let result = client.conversations().await;
    client.close().await;
    let mut list = result?;
    list.sort_by(|x, y| {
        y.pinned
            .cmp(&x.pinned)
            .then(y.last_time.cmp(&x.last_time))
            .then(x.conversation.cmp(&y.conversation))
    });
    let out: Vec<_> = list.iter().map(json::conversation).collect();
    println!("{}", serde_json::Value::Array(out));
    Ok(())
}
