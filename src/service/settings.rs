//! Settings: named values in the database, validated per key.

use super::{Actor, Keyward, Need, audit_event};
use crate::error::{Error, Result};
use crate::model::{self, Ttl};
use crate::store::directory::{self as dir, SettingRow};
use serde_json::json;

/// The `issuer` until one is set: `keyward serve`'s default address.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";

/// Every setting with its default value.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("issuer", DEFAULT_ISSUER),
    ("default_ttl", "24h"),
    ("max_ttl", "365d"),
    ("grant_ttl", "1h"),
    ("refresh_ttl", "30d"),
    ("password_grant", "off"),
    ("rate_limit_per_client", "600"),
    ("rate_limit_per_address", "1200"),
];

/// What each setting accepts, for help and error messages.
pub fn describe(key: &str) -> &'static str {
    match key {
        "issuer" => {
            "the `iss` of minted tokens: an http(s) URL without query, fragment or credentials, such as https://auth.example.com"
        }
        "default_ttl" => {
            "lifetime of tokens an operator mints without giving one: a duration such as 24h"
        }
        "max_ttl" => {
            "the longest lifetime an access token may get (bounds default_ttl and grant_ttl; refresh tokens have refresh_ttl): a duration such as 365d"
        }
        "grant_ttl" => "lifetime of tokens issued by the token service: a duration such as 1h",
        "refresh_ttl" => "lifetime of refresh tokens: a duration such as 30d",
        "password_grant" => "whether the token service accepts the password grant: on or off",
        "rate_limit_per_client" => "token requests per minute per client id (0 = unlimited)",
        "rate_limit_per_address" => "token requests per minute per source address (0 = unlimited)",
        _ => "",
    }
}

/// Validates and canonicalises a value for `key`.
pub fn validate(key: &str, value: &str) -> Result<String> {
    let v = value.trim();
    match key {
        "issuer" => {
            // RFC 8414 §2: an https (here also http) URL with no query or fragment;
            // and no credentials, which every token would carry.
            let u = url::Url::parse(v).ok();
            let ok = u.as_ref().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.query().is_none()
                    && u.fragment().is_none()
            }) && v.len() <= 2000
                && !v.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(Error::invalid("issuer", value, describe(key)));
            }
            Ok(v.trim_end_matches('/').to_string())
        }
        "default_ttl" | "max_ttl" | "grant_ttl" | "refresh_ttl" => {
            let field: &'static str = match key {
                "default_ttl" => "default_ttl",
                "max_ttl" => "max_ttl",
                "grant_ttl" => "grant_ttl",
                _ => "refresh_ttl",
            };
            Ok(Ttl::parse(field, v)?.to_string())
        }
        "password_grant" => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Ok("on".into()),
            "off" | "false" | "no" | "0" => Ok("off".into()),
            _ => Err(Error::invalid("password_grant", value, "on or off")),
        },
        "rate_limit_per_client" | "rate_limit_per_address" => v
            .parse::<u32>()
            .map(|n| n.to_string())
            .map_err(|_| Error::invalid("rate limit", value, describe(key))),
        _ => Err(Error::invalid(
            "setting",
            key,
            format!(
                "one of: {}",
                DEFAULTS
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Typed view of the settings the core uses.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub default_ttl: Ttl,
    pub max_ttl: Ttl,
    pub grant_ttl: Ttl,
    pub refresh_ttl: Ttl,
    pub password_grant: bool,
    pub rate_limit_per_client: u32,
    pub rate_limit_per_address: u32,
}

impl Settings {
    pub fn from_rows(rows: &[SettingRow]) -> Result<Settings> {
        let get = |k: &str| -> String {
            rows.iter()
                .find(|r| r.key == k)
                .map(|r| r.value.clone())
                .or_else(|| {
                    DEFAULTS
                        .iter()
                        .find(|(d, _)| *d == k)
                        .map(|(_, v)| v.to_string())
                })
                .unwrap_or_default()
        };
        Ok(Settings {
            issuer: get("issuer"),
            default_ttl: Ttl::parse("default_ttl", &get("default_ttl"))?,
            max_ttl: Ttl::parse("max_ttl", &get("max_ttl"))?,
            grant_ttl: Ttl::parse("grant_ttl", &get("grant_ttl"))?,
            refresh_ttl: Ttl::parse("refresh_ttl", &get("refresh_ttl"))?,
            password_grant: get("password_grant") == "on",
            rate_limit_per_client: get("rate_limit_per_client").parse().unwrap_or(0),
            rate_limit_per_address: get("rate_limit_per_address").parse().unwrap_or(0),
        })
    }
}

impl Keyward {
    pub async fn config_list(&self, _actor: &Actor) -> Result<Vec<SettingRow>> {
        self.read(async |cx| dir::settings(cx).await).await
    }

    pub async fn settings(&self) -> Result<Settings> {
        let rows = self.read(async |cx| dir::settings(cx).await).await?;
        Settings::from_rows(&rows)
    }

    pub async fn config_get(&self, _actor: &Actor, key: &str) -> Result<SettingRow> {
        validate_key(key)?;
        let k = key.to_string();
        self.read(async move |cx| dir::setting(cx, &k).await)
            .await?
            .ok_or_else(|| Error::not_found("setting", key))
    }

    /// Changes a setting; returns (before, after).
    pub async fn config_set(
        &self,
        actor: &Actor,
        key: &str,
        value: &str,
    ) -> Result<(String, String)> {
        actor.require(Need::Global)?;
        let v = validate(key, value)?;
        let (key, actor) = (key.to_string(), actor.clone());
        self.write(async move |cx| {
            let cur = dir::setting(cx, &key)
                .await?
                .ok_or_else(|| Error::not_found("setting", &key))?;
            // Keep the access tokens' lifetimes (default_ttl, grant_ttl) <= max_ttl.
            let all = dir::settings(cx).await?;
            let mut s = Settings::from_rows(&all)?;
            match key.as_str() {
                "default_ttl" => s.default_ttl = Ttl::parse("default_ttl", &v)?,
                "grant_ttl" => s.grant_ttl = Ttl::parse("grant_ttl", &v)?,
                "max_ttl" => s.max_ttl = Ttl::parse("max_ttl", &v)?,
                _ => {}
            }
            for (name, ttl) in [("default_ttl", s.default_ttl), ("grant_ttl", s.grant_ttl)] {
                if ttl <= s.max_ttl {
                    continue;
                }
                // Name the setting being changed, with the value as typed.
                return Err(if key == "max_ttl" {
                    Error::invalid(
                        "max_ttl",
                        value,
                        format!("at least {name} ({ttl}); lower {name} first"),
                    )
                } else {
                    Error::invalid(name, value, format!("at most max_ttl ({})", s.max_ttl))
                });
            }
            if cur.value != v {
                if !dir::update_setting(cx, &key, &v, cur.version, model::now()).await? {
                    return Err(Error::stale("setting", &key));
                }
                audit_event(
                    cx,
                    &actor,
                    "config.set",
                    &key,
                    None,
                    json!({"before": cur.value, "after": v}),
                )
                .await?;
            }
            Ok((cur.value, v))
        })
        .await
    }
}

fn validate_key(key: &str) -> Result<()> {
    if DEFAULTS.iter().any(|(k, _)| *k == key) {
        Ok(())
    } else {
        Err(Error::invalid(
            "setting",
            key,
            format!(
                "one of: {}",
                DEFAULTS
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}
