//! The core's typed errors. Each variant says what was wrong and what is accepted;
//! front-ends map them to messages, JSON error codes and exit codes.

use std::fmt;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value failed validation at the edge.
    #[error("invalid {field} {value:?}: {accepted}")]
    Invalid {
        field: &'static str,
        value: String,
        accepted: String,
    },
    /// The named entity does not exist (or is not visible to this operator).
    #[error("{kind} {name:?} not found{hint}")]
    NotFound {
        kind: &'static str,
        name: String,
        hint: Hint,
    },
    /// The change collides with existing data (duplicate, stale version, ...).
    #[error("{0}")]
    Conflict(String),
    /// The change is refused by a rule of the domain model.
    #[error("{0}")]
    Refused(String),
    /// Refused by a rule of the domain model until the operator takes another step
    /// first (same code and exit code as [`Error::Refused`]).
    #[error("{reason}; {step}")]
    Blocked { reason: String, step: Step },
    /// A single-use credential (a refresh token, an authorization code) was presented
    /// again: what it issued has been revoked, as it may have been stolen.
    #[error("{0}")]
    Reused(String),
    /// The acting operator may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The OS account is not a Keyward operator.
    #[error(
        "the OS account {account:?} is not a Keyward operator; an admin can add it with `keyward operator add {account} --role viewer|support|admin`"
    )]
    NotOperator { account: String },
    /// The database is missing, unreachable or not initialised.
    #[error("{0}")]
    Environment(String),
    /// The master key is missing or wrong.
    #[error("{0}")]
    MasterKey(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(String),
}

/// Most characters of a bad value that an error message repeats.
const ECHO_CHARS: usize = 64;

/// A bad value as an error names it: whole when short, else its first characters and
/// `…` (a 64 KiB value would otherwise come back whole in every message naming it).
fn clip(value: String) -> String {
    match value.char_indices().nth(ECHO_CHARS) {
        None => value,
        Some((end, _)) => format!("{}…", &value[..end]),
    }
}

/// What an operator can do next about an [`Error`]: the core names the step, each
/// front-end says it in its own terms (the CLI as a command, the console as the keys
/// that do it, the HTTP API not at all: its callers are not operators).
/// `Display` is the CLI's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Add the missing scope.
    AddScope,
    /// Revoke `scope` from the roles that grant it.
    RevokeScope { scope: String },
    /// Change the scopes that imply this one.
    EditImplying,
    /// Make a role the default for new users (`other`: another than the one named).
    SetDefaultRole { other: bool },
    /// Rotate the signing key (creates a new active one).
    RotateSigningKey,
    /// Add a domain.
    AddDomain,
    /// Find the user by a search of the users.
    SearchUsers,
    /// Enable the (disabled) user.
    EnableUser,
    /// Retire the signing key `kid` revoking the tokens it signed.
    RevokeSignedTokens { kid: String },
    /// List the entities of this kind to find the right name.
    List(Listing),
}

/// The listings a [`Step::List`] points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Stations,
    Keys,
    Apps,
    Tokens,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::AddScope => f.write_str("add one with `keyward scope add NAME`"),
            Step::RevokeScope { scope } => {
                write!(f, "revoke it first with `keyward role revoke ROLE {scope}`")
            }
            Step::EditImplying => f.write_str("change those with `keyward scope edit` first"),
            Step::SetDefaultRole { other } => write!(
                f,
                "make {} role the default first with `keyward role default ROLE`",
                if *other { "another" } else { "a" }
            ),
            Step::RotateSigningKey => f.write_str("run `keyward signing-key rotate` first"),
            Step::AddDomain => f.write_str("add one with `keyward domain add NAME`"),
            Step::SearchUsers => f.write_str("`keyward user list --search TEXT` finds them"),
            Step::EnableUser => {
                f.write_str("enable the user first with `keyward user enable USER`")
            }
            Step::RevokeSignedTokens { kid } => write!(
                f,
                "wait until they expire, or revoke them with `keyward signing-key retire {kid} --revoke-tokens`",
            ),
            Step::List(l) => write!(
                f,
                "`keyward {} list` shows them",
                match l {
                    Listing::Stations => "station",
                    Listing::Keys => "key",
                    Listing::Apps => "app",
                    Listing::Tokens => "token",
                }
            ),
        }
    }
}

/// Optional trailing hint for [`Error::NotFound`]: what there is, and a next step.
#[derive(Debug, Default, Clone)]
pub struct Hint {
    pub text: Option<String>,
    pub step: Option<Step>,
}

impl Hint {
    /// `; TEXT; STEP`, with the step said by `say` (left out when it says nothing).
    fn render(&self, say: &dyn Fn(&Step) -> Option<String>) -> String {
        let mut out = String::new();
        for part in [self.text.clone(), self.step.as_ref().and_then(say)]
            .into_iter()
            .flatten()
        {
            out.push_str("; ");
            out.push_str(&part);
        }
        out
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&|s| Some(s.to_string())))
    }
}

impl Error {
    pub fn invalid(
        field: &'static str,
        value: impl Into<String>,
        accepted: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            field,
            value: clip(value.into()),
            accepted: accepted.into(),
        }
    }

    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
            hint: Hint::default(),
        }
    }

    pub fn not_found_hint(
        kind: &'static str,
        name: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
            hint: Hint {
                text: Some(hint.into()),
                step: None,
            },
        }
    }

    /// Not found, with a next step (and, if any, what there is).
    pub fn not_found_step(
        kind: &'static str,
        name: impl Into<String>,
        text: Option<String>,
        step: Step,
    ) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
            hint: Hint {
                text,
                step: Some(step),
            },
        }
    }

    /// Refused until `step` is taken.
    pub fn blocked(reason: impl Into<String>, step: Step) -> Self {
        Error::Blocked {
            reason: reason.into(),
            step,
        }
    }

    /// The message with its next step, if any, said by `say` (`None`: left out).
    /// `to_string()` is this with the CLI's wording.
    pub fn render(&self, say: impl Fn(&Step) -> Option<String>) -> String {
        match self {
            Error::NotFound { kind, name, hint } => {
                format!("{kind} {name:?} not found{}", hint.render(&say))
            }
            Error::Blocked { reason, step } => match say(step) {
                Some(s) => format!("{reason}; {s}"),
                None => reason.clone(),
            },
            e => e.to_string(),
        }
    }

    /// The message for callers who are not operators (the HTTP API): no next step.
    pub fn without_step(&self) -> String {
        self.render(|_| None)
    }

    pub fn stale(kind: &'static str, name: &str) -> Self {
        Error::Conflict(format!(
            "{kind} {name:?} was changed by someone else since it was read; reload and try again"
        ))
    }

    /// Stable machine-readable code, used as `{"error": CODE}` in JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid",
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Refused(_) | Error::Blocked { .. } => "refused",
            Error::Reused(_) => "reused",
            Error::PermissionDenied(_) | Error::NotOperator { .. } => "permission_denied",
            Error::Environment(_) => "environment",
            Error::MasterKey(_) => "master_key",
            Error::Database(_) => "database",
        }
    }

    /// Process exit code per SPEC.md §3: 1 refused/failed on its merits, 3 environment.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Environment(_) | Error::MasterKey(_) | Error::Database(_) => 3,
            _ => 1,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    return Error::Conflict(format!("already exists ({})", db.message()));
                }
                if db.is_foreign_key_violation() {
                    return Error::Refused(format!(
                        "still referenced by other records ({})",
                        db.message()
                    ));
                }
                let msg = db.message();
                if msg.contains("database is locked") || msg.contains("busy") {
                    return Error::Conflict(
                        "the database is busy with another writer; try again".to_string(),
                    );
                }
                if db.code().as_deref() == Some("40001") || db.code().as_deref() == Some("40P01") {
                    return Error::Conflict(
                        "the change collided with a concurrent change; try again".to_string(),
                    );
                }
                Error::Database(e.to_string())
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed => Error::Environment(format!("database unreachable: {e}")),
            _ => Error::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Environment(format!("database migration failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_steps_are_said_by_the_front_end() {
        let e = Error::blocked(
            "role Consumer is the default for new users",
            Step::SetDefaultRole { other: true },
        );
        assert_eq!(
            e.to_string(),
            "role Consumer is the default for new users; make another role the default \
             first with `keyward role default ROLE`"
        );
        assert_eq!(
            e.without_step(),
            "role Consumer is the default for new users"
        );
        assert_eq!(
            e.render(|_| Some("press d".into())),
            "role Consumer is the default for new users; press d"
        );
        assert_eq!((e.code(), e.exit_code()), ("refused", 1));
        let e = Error::not_found_step(
            "scope",
            "bulk",
            Some("known scopes: read, write".into()),
            Step::AddScope,
        );
        assert_eq!(
            e.to_string(),
            "scope \"bulk\" not found; known scopes: read, write; add one with `keyward scope add NAME`"
        );
        assert_eq!(
            e.without_step(),
            "scope \"bulk\" not found; known scopes: read, write"
        );
        let e = Error::not_found_step("user", "x", None, Step::SearchUsers);
        assert_eq!(e.without_step(), "user \"x\" not found");
        assert_eq!(
            e.render(|_| Some("press /".into())),
            "user \"x\" not found; press /"
        );
    }

    #[test]
    fn long_bad_values_are_clipped_in_messages() {
        let e = Error::invalid("name", "Bob", "1-200 characters");
        assert_eq!(e.to_string(), r#"invalid name "Bob": 1-200 characters"#);
        let long = "é".repeat(64);
        assert!(
            Error::invalid("name", long.clone(), "x")
                .to_string()
                .contains(&long)
        );
        let e = Error::invalid("name", "é".repeat(10_000), "1-200 characters");
        assert_eq!(
            e.to_string(),
            format!("invalid name \"{}…\": 1-200 characters", "é".repeat(64))
        );
    }
}
