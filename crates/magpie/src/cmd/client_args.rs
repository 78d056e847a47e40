//! Turning the shared client flags into an SDK configuration.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use magpie_client::ClientConfig;
use magpie_types::{AppId, DeviceId, UserId};

use crate::cli::ClientArgs;

/// The demo app's public development secret (see `magpie serve --demo`).
const DEMO_SECRET: &str = magpie_server::demo::DEMO_SECRET;

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The secret to mint with: the given one, or the demo secret for the demo app.
pub fn secret_for(app: &AppId, given: Option<&str>) -> anyhow::Result<String> {
    match given {
        Some(s) => Ok(s.to_owned()),
        None if app.as_str() == magpie_server::demo::DEMO_APP => Ok(DEMO_SECRET.to_owned()),
        None => {
            anyhow::bail!("app {app} needs a secret: pass --app-secret or set MAGPIE_APP_SECRET")
        }
    }
}

/// The SDK configuration for these flags, and the user it acts as (if known).
pub fn config(a: &ClientArgs) -> anyhow::Result<(ClientConfig, Option<UserId>)> {
    let (token, user) = match (&a.token, &a.as_user) {
        (Some(t), _) => (t.clone(), None),
        (None, Some(u)) => {
            let app = AppId::new(a.app.as_str())?;
            let user = UserId::new(u.as_str())?;
            let device = match &a.device {
                Some(d) => DeviceId::new(d.as_str())?,
                None => DeviceId::new(format!("cli-{:08x}", rand::random::<u32>()))?,
            };
            let secret = secret_for(&app, a.app_secret.as_deref())?;
            let token = magpie_core::auth::mint(
                &app,
                secret.as_bytes(),
                &user,
                &device,
                now_secs(),
                7 * 86_400,
            )?;
            (token, Some(user))
        }
        (None, None) => anyhow::bail!("say who you are: --as USER or --token TOKEN"),
    };
    let mut config = ClientConfig::new(a.server.clone(), token)
        .with_client_name(format!("magpie-cli/{}", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &a.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        config = config.add_root_certificates_pem(&pem)?;
    }
    Ok((config, user))
}
