//! `magpie send`: one message, one JSON ack.

use std::time::Duration;

use magpie_client::{Client, ClientMsgId, UserId};

use crate::cli::SendArgs;
use crate::cmd::{client_args, json};

/// Sends and prints the ack.
pub async fn run(a: SendArgs) -> anyhow::Result<()> {
    let (mut config, _) = client_args::config(&a.client)?;
    if let Some(t) = a.timeout {
        config = config.with_send_timeout(Some(Duration::from_secs_f64(t)));
    }
    let to = UserId::new(a.to)?;
    let (client, _events) = Client::connect(config).await?;
    let result = match a.client_msg_id {
        Some(id) => {
            client
                .send_with_id(
                    &to,
                    ClientMsgId::new(id)?,
                    magpie_client::Content::text(a.text),
                )
                .await
        }
        None => client.send_text(&to, a.text).await,
    };
    client.close().await;
    let ack = result?;
    println!("{}", json::ack(&ack));
    Ok(())
}
