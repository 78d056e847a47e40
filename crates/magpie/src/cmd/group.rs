//! `magpie group …`: group operations, each printing one JSON object.

use magpie_client::{Client, GroupId, JoinOutcome, JoinPolicy, NewGroup, UserId};
use serde_json::json;

use crate::cli::{GroupArgs, GroupOp};
use crate::cmd::{client_args, json};

fn users(list: &[String]) -> anyhow::Result<Vec<UserId>> {
    list.iter()
        .filter(|u| !u.is_empty())
        .map(|u| Ok(UserId::new(u.as_str())?))
        .collect()
}

fn policy(s: &str) -> anyhow::Result<JoinPolicy> {
    match s {
        "open" => Ok(JoinPolicy::Open),
        "approval" => Ok(JoinPolicy::Approval),
        "invite" => Ok(JoinPolicy::Invite),
        other => anyhow::bail!("unknown policy {other:?} (open, approval or invite)"),
    }
}

/// Runs one group operation.
pub async fn run(a: GroupArgs) -> anyhow::Result<()> {
    let (config, _) = client_args::config(&a.client)?;
    let (client, _events) = Client::connect(config).await?;
    let result = op(&client, a.op).await;
    client.close().await;
    println!("{}", result?);
    Ok(())
}

async fn op(client: &Client, op: GroupOp) -> anyhow::Result<serde_json::Value> {
    Ok(match op {
        GroupOp::Create {
            name,
            members,
            id,
            policy: p,
            super_group,
        } => {
            let mut g = NewGroup::named(name)
                .with_members(users(&members)?)
                .with_join_policy(policy(&p)?);
            g.super_group = super_group;
            if let Some(id) = id {
                g = g.with_id(GroupId::new(id)?);
            }
            json::group(&client.create_group(g).await?)
        }
        GroupOp::Add { group, members } => {
            let c = client
                .add_members(&GroupId::new(group)?, &users(&members)?)
                .await?;
            json::group_change(&c)
        }
        GroupOp::Remove { group, members } => {
            let c = client
                .kick_members(&GroupId::new(group)?, &users(&members)?)
                .await?;
            json::group_change(&c)
        }
        GroupOp::Join { group } => match client.join_group(&GroupId::new(group)?).await? {
            JoinOutcome::Joined { group, seq } => json!({
                "joined": true,
                "pending": false,
                "seq": seq,
                "group": group.as_ref().map(json::group),
            }),
            _ => json!({"joined": false, "pending": true}),
        },
        GroupOp::Leave { group } => {
            json::group_change(&client.leave_group(&GroupId::new(group)?).await?)
        }
        GroupOp::Members { group } => {
            let page = client.group_members(&GroupId::new(group)?, None, 0).await?;
            json!({
                "members": page.members.iter().map(json::member).collect::<Vec<_>>(),
                "has_more": page.has_more,
            })
        }
        GroupOp::Info { group } => json::group(&client.group(&GroupId::new(group)?).await?),
        GroupOp::Dismiss { group } => {
            json::group_change(&client.dismiss_group(&GroupId::new(group)?).await?)
        }
    })
}
