//! `magpie config check`: load the static configuration as `serve` does and print it.

use magpie_server::Config;
use serde_json::Value;

use crate::cli::{ConfigArgs, ConfigOp};
use crate::cmd::Failure;

/// What a secret is printed as.
const REDACTED: &str = "[redacted]";

/// Exit status of an invalid configuration (1 stays for other failures).
const INVALID: u8 = 2;

/// Runs one configuration operation.
pub fn run(a: ConfigArgs) -> anyhow::Result<()> {
    match a.op {
        ConfigOp::Check { config } => {
            let loaded = Config::load(config.as_deref())
                .map_err(|e| Failure::new(INVALID, format!("{e}{}", sources(config.as_deref()))))?;
            let mut v = serde_json::to_value(&loaded)?;
            redact(&mut v);
            crate::cmd::http::print_pretty(&v)
        }
    }
}

/// Replaces every secret with [`REDACTED`]: the apps' secrets and a set admin key (an
/// empty one, "admin API off", is shown as it is).
fn redact(v: &mut Value) {
    if let Some(apps) = v.get_mut("apps").and_then(Value::as_array_mut) {
        for app in apps {
            if let Some(s) = app.get_mut("secret") {
                *s = REDACTED.into();
            }
        }
    }
    if let Some(k) = v.get_mut("admin").and_then(|a| a.get_mut("key"))
        && k.as_str() != Some("")
    {
        *k = REDACTED.into();
    }
}

/// A second line naming what was layered over the defaults. The loader's own messages name
/// the source of a value that fails to parse; a value that parses but fails validation is
/// named only by its key, and this line says where it could have come from.
fn sources(file: Option<&std::path::Path>) -> String {
    // The configuration's top-level keys, as the loader filters `MAGPIE_*` variables.
    let keys: Vec<String> = match serde_json::to_value(Config::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut env: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| {
            k.strip_prefix("MAGPIE_").is_some_and(|rest| {
                let top = rest.split("__").next().unwrap_or_default();
                keys.iter().any(|t| t.eq_ignore_ascii_case(top))
            })
        })
        .collect();
    env.sort();
    let file = file.map_or_else(|| "no file".to_owned(), |f| f.display().to_string());
    let env = if env.is_empty() {
        "none".to_owned()
    } else {
        env.join(", ")
    };
    format!("\n  layers: defaults < {file} < environment ({env})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config::from_toml(
            "[admin]\nkey = \"admin-key-0123456789\"\n[[apps]]\nid = \"x\"\nsecret = \"app-secret-0123456789\"",
        )
        .expect("valid");
        let mut v = serde_json::to_value(&c).expect("serialisable");
        redact(&mut v);
        let text = v.to_string();
        assert!(!text.contains("0123456789"), "{text}");
        assert_eq!(v["apps"][0]["secret"], REDACTED);
        assert_eq!(v["admin"]["key"], REDACTED);

        c.admin.key.clear();
        let mut v = serde_json::to_value(&c).expect("serialisable");
        redact(&mut v);
        assert_eq!(v["admin"]["key"], "");
    }
}
