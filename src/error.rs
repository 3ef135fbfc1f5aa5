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

/// Optional trailing hint for [`Error::NotFound`].
#[derive(Debug, Default, Clone)]
pub struct Hint(pub Option<String>);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(h) => write!(f, "; {h}"),
            None => Ok(()),
        }
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
            hint: Hint(None),
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
            hint: Hint(Some(hint.into())),
        }
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
            Error::Refused(_) => "refused",
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
