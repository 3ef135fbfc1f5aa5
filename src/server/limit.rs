//! Rate limits of the token endpoints: keyed GCRA limiters (governor) per client id
//! and per source address, sized from the settings (requests per minute, 0 = off).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use keyward::service::settings::Settings;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

pub struct Limits {
    per_client: (u32, Option<DefaultKeyedRateLimiter<String>>),
    per_address: (u32, Option<DefaultKeyedRateLimiter<IpAddr>>),
}

fn limiter<K: std::hash::Hash + Eq + Clone>(n: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

fn retry_after(nu: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
    nu.wait_time_from(DefaultClock::default().now())
}

impl Limits {
    pub fn new(s: &Settings) -> Limits {
        Limits {
            per_client: (s.rate_limit_per_client, limiter(s.rate_limit_per_client)),
            per_address: (s.rate_limit_per_address, limiter(s.rate_limit_per_address)),
        }
    }

    /// Whether the settings ask for other limits than these.
    pub fn differs(&self, s: &Settings) -> bool {
        self.per_client.0 != s.rate_limit_per_client
            || self.per_address.0 != s.rate_limit_per_address
    }

    /// Forgets keys whose budget is full again (keeps memory bounded).
    pub fn retain_recent(&self) {
        if let Some(l) = &self.per_client.1 {
            l.retain_recent();
        }
        if let Some(l) = &self.per_address.1 {
            l.retain_recent();
        }
    }

    /// Whether both limits are off (nothing to count).
    pub fn off(&self) -> bool {
        self.per_client.1.is_none() && self.per_address.1.is_none()
    }

    /// Counts one request; Err(wait) when over a limit.
    pub fn check(&self, client: Option<&str>, addr: IpAddr) -> Result<(), Duration> {
        if let Some(l) = &self.per_address.1 {
            l.check_key(&addr).map_err(retry_after)?;
        }
        if let (Some(l), Some(c)) = (&self.per_client.1, client) {
            // Bound the key length: ids are short; anything longer is one bucket.
            let key = if c.len() > 100 { "(long)" } else { c };
            l.check_key(&key.to_string()).map_err(retry_after)?;
        }
        Ok(())
    }
}
