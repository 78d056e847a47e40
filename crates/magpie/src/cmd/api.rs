//! `magpie api METHOD PATH [JSON]`: any REST endpoint, with the right credentials.

use anyhow::Context;
use reqwest::Method;
use reqwest::header::HeaderMap;

use crate::cli::ApiArgs;
use crate::cmd::http::{self, Api, Auth, Extra};

/// Sends the request; prints the body (pretty if JSON) on stdout, also for an error status,
/// which then fails the command with the one-line summary.
pub async fn run(a: ApiArgs) -> anyhow::Result<()> {
    let method = Method::from_bytes(a.method.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("{:?} is not an HTTP method", a.method))?;
    let mut headers = HeaderMap::new();
    for h in &a.header {
        let (name, value) = http::parse_header(h)?;
        headers.append(name, value);
    }
    let body = a
        .json
        .as_deref()
        .map(|j| http::json_arg("the request body", j, false))
        .transpose()?;
    // Only the super-admin may use the admin routes; app credentials never work there.
    let auth = if is_admin_path(&a.path) {
        let demo = a.app.app == magpie_server::demo::DEMO_APP;
        Auth::admin(&a.admin, demo)?
    } else {
        Auth::app(&a.app)?
    };
    let api = Api::new(&a.http)?;
    let answer = api
        .call(
            method,
            &a.path,
            &auth,
            Extra {
                body,
                idempotency_key: a.idempotency_key,
                headers,
            },
        )
        .await?;
    match &answer.json {
        Some(v) => http::print_pretty(v)?,
        None if answer.body.is_empty() => {}
        None => http::print(&String::from_utf8_lossy(&answer.body))?,
    }
    if !answer.status.is_success() {
        anyhow::bail!("{}", answer.summary());
    }
    Ok(())
}

fn is_admin_path(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path == "/v1/admin" || path.starts_with("/v1/admin/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths() {
        assert!(is_admin_path("/v1/admin/apps"));
        assert!(is_admin_path("/v1/admin?x=1"));
        assert!(!is_admin_path("/v1/administrators"));
        assert!(!is_admin_path("/v1/users/admin"));
    }
}
