//! Who is acting: the OS account resolved from the process's uid (never `$USER`),
//! the host, and the SSH client address as origin.

use crate::error::{Error, Result};
use crate::model::OperatorRole;

/// The OS-level identity of the calling process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsIdentity {
    pub account: String,
    pub host: String,
    /// `ssh:ADDR` when run over SSH, else `local`.
    pub origin: String,
}

impl OsIdentity {
    /// Resolves the account from `getuid()` through the passwd database.
    pub fn current() -> Result<Self> {
        let uid = nix::unistd::getuid();
        let account = match nix::unistd::User::from_uid(uid) {
            Ok(Some(u)) => u.name,
            Ok(None) => format!("uid{}", uid.as_raw()),
            Err(e) => return Err(Error::Environment(format!("cannot resolve uid {uid}: {e}"))),
        };
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .map(|h| h.split('.').next().unwrap_or(&h).to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        // sshd sets SSH_CONNECTION to "client-ip client-port server-ip server-port";
        // anything else (the variable is the process's to set) is not an SSH origin,
        // and only a parsed address reaches the audit log.
        let origin = std::env::var("SSH_CONNECTION")
            .ok()
            .and_then(|v| {
                v.split_whitespace()
                    .next()
                    .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            })
            .map(|ip| format!("ssh:{ip}"))
            .unwrap_or_else(|| "local".to_string());
        Ok(OsIdentity {
            account,
            host,
            origin,
        })
    }
}

/// The acting operator, with what they may do.
#[derive(Debug, Clone)]
pub struct Actor {
    pub account: String,
    pub host: String,
    pub origin: String,
    pub role: OperatorRole,
    /// Domains the operator is limited to, as (id, name); `None` = every domain.
    pub domains: Option<Vec<(String, String)>>,
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any operator.
    Read,
    /// support or admin, within their domains.
    Support,
    /// admin, within their domains.
    Admin,
    /// admin of every domain: roles, scopes, operators, settings, signing keys, domains.
    Global,
}

impl Actor {
    /// The internal actor of the token service and of tests: an unrestricted admin.
    pub fn system(label: &str, origin: &str) -> Actor {
        Actor {
            account: label.to_string(),
            host: "keyward".to_string(),
            origin: origin.to_string(),
            role: OperatorRole::Admin,
            domains: None,
        }
    }

    /// `account@host`, as recorded in the audit log.
    pub fn label(&self) -> String {
        format!("{}@{}", self.account, self.host)
    }

    pub fn is_limited(&self) -> bool {
        self.domains.is_some()
    }

    /// Domain ids this operator may see (None = all).
    pub fn domain_ids(&self) -> Option<Vec<String>> {
        self.domains
            .as_ref()
            .map(|d| d.iter().map(|(id, _)| id.clone()).collect())
    }

    pub fn can_see(&self, domain_id: &str) -> bool {
        match &self.domains {
            None => true,
            Some(ds) => ds.iter().any(|(id, _)| id == domain_id),
        }
    }

    /// Why this operator may not do something needing `need`, if they may not.
    pub fn denied(&self, need: Need) -> Option<String> {
        let who = format!("{} is a {} operator", self.account, self.role);
        match need {
            Need::Read => None,
            Need::Support if self.role >= OperatorRole::Support => None,
            Need::Support => Some(format!("{who}; this needs support or admin")),
            Need::Admin if self.role == OperatorRole::Admin => None,
            Need::Admin => Some(format!("{who}; this needs admin")),
            Need::Global if self.role == OperatorRole::Admin && !self.is_limited() => None,
            Need::Global if self.role == OperatorRole::Admin => Some(format!(
                "{} is limited to some domains and cannot change global settings (roles, scopes, operators, settings, signing keys, domains)",
                self.account
            )),
            Need::Global => Some(format!("{who}; this needs an admin of all domains")),
        }
    }

    pub fn require(&self, need: Need) -> Result<()> {
        match self.denied(need) {
            None => Ok(()),
            Some(why) => Err(Error::PermissionDenied(why)),
        }
    }

    /// Requires that the operator may act on this domain.
    pub fn require_domain(&self, domain_id: &str, domain_name: &str) -> Result<()> {
        if self.can_see(domain_id) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "{} is not an operator of domain {domain_name}",
                self.account
            )))
        }
    }
}
