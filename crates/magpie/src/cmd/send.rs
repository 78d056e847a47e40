//! `magpie send`: one message (1:1 or group), one JSON ack.

use std::time::Duration;

use magpie_client::{Client, ClientMsgId, GroupId, Recipient, SendOptions, UserId};

use crate::cli::SendArgs;
use crate::cmd::{client_args, json};

/// Sends and prints the ack.
pub async fn run(a: SendArgs) -> anyhow::Result<()> {
    let (mut config, _) = client_args::config(&a.client)?;
    if let Some(t) = a.timeout {
        config = config.with_send_timeout(Some(Duration::from_secs_f64(t)));
    }
    let to = match (a.to, a.group) {
        (Some(u), None) => Recipient::User(UserId::new(u)?),
        (None, Some(g)) => Recipient::Group(GroupId::new(g)?),
        _ => anyhow::bail!("give exactly one of --to and --group"),
    };
    let mut options = SendOptions::default();
    options.mentions = a
        .mention
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| UserId::new(m.as_str()))
        .collect::<Result<_, _>>()?;
    options.mention_all = a.mention_all;
    options.reply_to = a.reply_to;
    if let Some(id) = a.client_msg_id {
        options.client_msg_id = Some(ClientMsgId::new(id)?);
    }
    let (client, _events) = Client::connect(config).await?;
    let result = client
        .send_with(to, magpie_client::Content::text(a.text), options)
        .await;
    client.close().await;
    let ack = result?;
    println!("{}", json::ack(&ack));
    Ok(())
}
