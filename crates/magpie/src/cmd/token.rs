//! `magpie token`: mint a user token.

use magpie_types::{AppId, DeviceId, UserId};

use crate::cli::TokenArgs;
use crate::cmd::client_args::{now_secs, secret_for};

/// Prints a token.
pub fn run(a: TokenArgs) -> anyhow::Result<()> {
    let app = AppId::new(a.app)?;
    let secret = secret_for(&app, a.app_secret.as_deref())?;
    let token = magpie_core::auth::mint(
        &app,
        secret.as_bytes(),
        &UserId::new(a.user)?,
        &DeviceId::new(a.device)?,
        now_secs(),
        a.ttl,
    )?;
    println!("{token}");
    Ok(())
}
