//! `magpie app …`: app management through the admin API, each printing one JSON object.

use magpie_types::AppId;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::cli::{AppArgs, AppOp};
use crate::cmd::http::{self, Api, Auth, Extra};

/// Runs one app operation.
pub async fn run(a: AppArgs) -> anyhow::Result<()> {
    // The admin key defaults to the public key of `serve --demo`: these commands have no
    // app of their own to decide by, and a wrong key only earns a 401 (with a hint).
    let auth = Auth::admin(&a.admin, true)?;
    let (method, path, body) = request(a.op)?;
    let api = Api::new(&a.http)?;
    let (answer, _) = api
        .json(
            method,
            &path,
            &auth,
            Extra {
                body,
                ..Extra::default()
            },
        )
        .await?;
    http::print(&answer.to_string())
}

/// The admin request for an operation.
fn request(op: AppOp) -> anyhow::Result<(Method, String, Option<Value>)> {
    const APPS: &str = "/v1/admin/apps";
    Ok(match op {
        AppOp::Create { id, name, settings } => {
            let mut body = Map::new();
            body.insert("id".into(), app_id(&id)?.as_str().into());
            if let Some(n) = name {
                body.insert("name".into(), n.into());
            }
            if let Some(s) = settings {
                body.insert("settings".into(), http::json_arg("--settings", &s, true)?);
            }
            (Method::POST, APPS.into(), Some(Value::Object(body)))
        }
        AppOp::List => (Method::GET, APPS.into(), None),
        AppOp::Show { id } => (Method::GET, format!("{APPS}/{}", app_id(&id)?), None),
        AppOp::RotateSecret { id, grace_secs } => {
            let body = match grace_secs {
                Some(g) => json!({ "grace_secs": g }),
                None => json!({}),
            };
            (
                Method::POST,
                format!("{APPS}/{}/rotate-secret", app_id(&id)?),
                Some(body),
            )
        }
        AppOp::Settings { id } => (
            Method::GET,
            format!("{APPS}/{}/settings", app_id(&id)?),
            None,
        ),
        AppOp::Set {
            id,
            settings,
            version,
        } => {
            let mut body = Map::new();
            body.insert(
                "settings".into(),
                http::json_arg("--settings", &settings, true)?,
            );
            if let Some(v) = version {
                body.insert("version".into(), v.into());
            }
            (
                Method::PUT,
                format!("{APPS}/{}/settings", app_id(&id)?),
                Some(Value::Object(body)),
            )
        }
    })
}

/// A validated app id: safe to put in a path as it is.
fn app_id(s: &str) -> anyhow::Result<AppId> {
    AppId::new(s).map_err(|e| anyhow::anyhow!("--id {s:?}: {e}"))
}
