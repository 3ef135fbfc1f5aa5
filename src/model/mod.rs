//! Domain types and their validation. A value of one of these types is valid:
//! validation happens once, at the edge, in the constructors.

use crate::error::{Error, Result};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// True for characters that must never reach storage in names (C0/C1 controls, DEL,
/// bidi overrides, zero-width joiners that disguise text).
fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn check_text(field: &'static str, value: &str, min: usize, max: usize) -> Result<String> {
    let trimmed = value.trim();
    let n = trimmed.chars().count();
    if let Some(c) = trimmed.chars().find(|c| is_forbidden_char(*c)) {
        return Err(Error::invalid(
            field,
            value,
            format!(
                "control or invisible characters are not accepted (found U+{:04X})",
                c as u32
            ),
        ));
    }
    if n < min || n > max {
        return Err(Error::invalid(
            field,
            value,
            if min == 0 {
                format!("at most {max} characters")
            } else {
                format!("{min} to {max} characters")
            },
        ));
    }
    Ok(trimmed.to_string())
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
    };
}

string_newtype!(
    /// A tenant, named by the host the API is published on (`free.example.com`). Lowercase.
    DomainName
);
impl DomainName {
    pub fn parse(s: &str) -> Result<Self> {
        let v = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut accepted = "a host name such as free.example.com: dot-separated labels of a-z, 0-9 and '-', each 1-63 characters, 253 at most".to_string();
        // An internationalised name is written in its ASCII (punycode) form, as the
        // request's Host header carries it: say which that is.
        if !v.is_ascii()
            && let Ok(u) = url::Url::parse(&format!("http://{v}/"))
            && let Some(ascii) = u.host_str().filter(|h| h.is_ascii() && *h != v)
        {
            accepted = format!("{accepted} (this name in ASCII: {ascii})");
        }
        if v.is_empty() || v.len() > 253 {
            return Err(Error::invalid("domain", s, accepted));
        }
        for label in v.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(Error::invalid("domain", s, accepted));
            }
        }
        Ok(Self(v))
    }
}

/// The form an address is stored and looked up by: composed (NFC) and lowercase, so
/// that `user show José@x` finds the user whichever way the terminal encoded the accent.
pub fn email_key(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.trim().nfc().collect::<String>().to_lowercase()
}

string_newtype!(
    /// An email address as entered (case preserved); compare with [`Email::normalized`].
    Email
);
impl Email {
    /// Canonically equivalent spellings are one address (stored composed, NFC); an
    /// address written with compatibility characters, such as full-width letters that
    /// look like another user's, is refused with its ordinary spelling (NFKC).
    pub fn parse(s: &str) -> Result<Self> {
        use unicode_normalization::UnicodeNormalization;
        let composed: String = s.trim().nfc().collect();
        let v = composed.as_str();
        let accepted = "an address like name@example.com (at most 254 characters, 64 before the @, no spaces or control characters)";
        let bad = || Error::invalid("email", s, accepted);
        if v.len() > 254 || v.chars().any(|c| c.is_whitespace() || is_forbidden_char(c)) {
            return Err(bad());
        }
        let ordinary: String = v.nfkc().collect();
        if ordinary != v {
            let mut accepted =
                "an address without compatibility characters (such as full-width letters)"
                    .to_string();
            // The ordinary spelling, when it is a plausible address (NFKC can make a
            // character eighteen).
            if ordinary.len() <= 254 {
                accepted = format!("{accepted}: {ordinary}");
            }
            return Err(Error::invalid("email", s, accepted));
        }
        let (local, host) = v.rsplit_once('@').ok_or_else(bad)?;
        // Look-alike letters of another alphabet in one part (Cyrillic "е" in "nеwbie"):
        // UTS #39's single-script rule, per part and per label of the host.
        for part in std::iter::once(local).chain(host.split('.')) {
            if let Some(c) = mixed_script(part) {
                return Err(Error::invalid(
                    "email",
                    s,
                    format!(
                        "letters of one script in each part; {part:?} mixes them ({c:?}, \
                         U+{:04X}, is from another alphabet than the letters around it)",
                        c as u32
                    ),
                ));
            }
        }
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || local.chars().any(|c| "\"(),:;<>[\\]".contains(c))
        {
            return Err(bad());
        }
        let host_ok = host.contains('.')
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !host_ok {
            return Err(bad());
        }
        Ok(Self(v.to_string()))
    }

    /// Case-insensitive form used for uniqueness per domain ([`email_key`]).
    pub fn normalized(&self) -> String {
        email_key(&self.0)
    }
}

string_newtype!(
    /// A scope name: `^[a-z][a-z0-9_.:-]{0,63}$`.
    ScopeName
);
impl ScopeName {
    pub fn parse(s: &str) -> Result<Self> {
        let v = s.trim();
        let b = v.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 64
            && b[0].is_ascii_lowercase()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.:-".contains(c));
        if !ok {
            return Err(Error::invalid(
                "scope",
                s,
                "a lowercase name matching ^[a-z][a-z0-9_.:-]{0,63}$, such as read or send_documents",
            ));
        }
        Ok(Self(v.to_string()))
    }

    /// Parse a comma- or space-separated list, rejecting duplicates silently (deduplicated).
    pub fn parse_list(s: &str) -> Result<Vec<ScopeName>> {
        let mut out: Vec<ScopeName> = Vec::new();
        for part in s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            let n = ScopeName::parse(part)?;
            if !out.contains(&n) {
                out.push(n);
            }
        }
        Ok(out)
    }
}

string_newtype!(
    /// A role name (`Consumer`, `Partner`); unique case-insensitively.
    RoleName
);
impl RoleName {
    pub fn parse(s: &str) -> Result<Self> {
        let v = s.trim();
        let ok = !v.is_empty()
            && v.chars().count() <= 64
            && v.chars().next().is_some_and(|c| c.is_alphabetic())
            && v.chars().all(|c| c.is_alphanumeric() || " _-.".contains(c));
        if !ok {
            return Err(Error::invalid(
                "role",
                s,
                "1-64 characters: letters, digits, space, '_', '-' or '.', starting with a letter",
            ));
        }
        if let Some(c) = mixed_script(v) {
            return Err(Error::invalid(
                "role",
                s,
                format!(
                    "letters of one script ({c:?}, U+{:04X}, is from another alphabet than the \
                     letters around it)",
                    c as u32
                ),
            ));
        }
        Ok(Self(v.to_string()))
    }
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
    /// What the name looks like (UTS #39 skeleton, lowercase): two roles whose names
    /// look alike (`Partner`, Greek `Ρartner`) cannot be told apart in a picker.
    pub fn skeleton(&self) -> String {
        looks(&self.0)
    }
}

/// What `s` looks like, case aside (UTS #39 skeleton of its lowercase).
pub fn looks(s: &str) -> String {
    unicode_security::skeleton(&s.to_lowercase()).collect()
}

/// When `s` is not single-script (UTS #39: digits and punctuation go with any script),
/// its odd letter out: the first of those sharing a script with the fewest others.
pub fn mixed_script(s: &str) -> Option<char> {
    use unicode_security::MixedScript;
    use unicode_security::mixed_script::AugmentedScriptSet;
    if s.is_single_script() {
        return None;
    }
    let sets: Vec<(char, AugmentedScriptSet)> = s
        .chars()
        .map(|c| (c, AugmentedScriptSet::for_char(c)))
        .filter(|(_, set)| !set.is_all())
        .collect();
    let kin = |set: &AugmentedScriptSet| {
        sets.iter()
            .filter(|(_, other)| {
                let mut both = *set;
                both.intersect_with(*other);
                !both.is_empty()
            })
            .count()
    };
    sets.iter().min_by_key(|(_, set)| kin(set)).map(|(c, _)| *c)
}

string_newtype!(
    /// A human display name (user, station, key, app): 0-200 characters, no control characters.
    DisplayName
);
impl DisplayName {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(Self(check_text("name", s, 0, 200)?))
    }
    /// Like [`DisplayName::parse`] but requires at least one character.
    pub fn parse_required(field: &'static str, s: &str) -> Result<Self> {
        Ok(Self(check_text(field, s, 1, 200)?))
    }
}

string_newtype!(
    /// Free text description: up to 500 characters, no control characters.
    Description
);
impl Description {
    pub fn parse(s: &str) -> Result<Self> {
        Self::parse_as("description", s)
    }
    /// The same rules for a text called otherwise (a revocation's reason).
    pub fn parse_as(field: &'static str, s: &str) -> Result<Self> {
        Ok(Self(check_text(field, s, 0, 500)?))
    }
}

string_newtype!(
    /// ISO 3166-1 alpha-2 country code, uppercase.
    CountryCode
);
impl CountryCode {
    pub fn parse(s: &str) -> Result<Self> {
        let v = s.trim().to_ascii_uppercase();
        // XK: Kosovo, user-assigned but used by the EU and most registries.
        if v.len() != 2
            || !v.bytes().all(|b| b.is_ascii_uppercase())
            || (v != "XK" && isocountry::CountryCode::for_alpha2(&v).is_err())
        {
            return Err(Error::invalid(
                "country code",
                s,
                "an ISO 3166-1 alpha-2 country code, such as DE or FR",
            ));
        }
        Ok(Self(v))
    }
}

string_newtype!(
    /// EU VAT identification number, normalised: uppercase, no spaces, dots or dashes.
    EuVatId
);
impl EuVatId {
    pub fn parse(s: &str) -> Result<Self> {
        let v: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '.' && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        // The VAT prefixes of the EU's member states (Greece's is EL), and XI for
        // Northern Ireland; every such number has digits.
        const PREFIXES: [&str; 28] = [
            "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
            "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
        ];
        let b = v.as_bytes();
        let ok = (4..=16).contains(&b.len())
            && PREFIXES.iter().any(|p| p.as_bytes() == &b[..2])
            && b[2..].iter().all(|c| c.is_ascii_alphanumeric())
            && b[2..].iter().any(|c| c.is_ascii_digit());
        if !ok {
            return Err(Error::invalid(
                "EU VAT id",
                s,
                "an EU country prefix (AT, BE, … DE, EL for Greece, … XI for Northern Ireland) followed by 2-14 letters or digits, such as DE123456789",
            ));
        }
        Ok(Self(v))
    }
}

string_newtype!(
    /// Company registration number, normalised: uppercase, inner whitespace collapsed.
    RegistrationNumber
);
impl RegistrationNumber {
    pub fn parse(s: &str) -> Result<Self> {
        let v = s
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        if v.is_empty() || v.chars().count() > 64 || v.chars().any(is_forbidden_char) {
            return Err(Error::invalid(
                "registration number",
                s,
                "1-64 printable characters, such as HRB 12345",
            ));
        }
        Ok(Self(v))
    }
}

string_newtype!(
    /// An OS account name as recorded for operators (`alice`).
    OsAccount
);
impl OsAccount {
    pub fn parse(s: &str) -> Result<Self> {
        let v = s.trim();
        let b = v.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 32
            && (b[0].is_ascii_lowercase() || b[0] == b'_' || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.-$".contains(c));
        if !ok {
            return Err(Error::invalid(
                "OS account",
                s,
                "a login name of up to 32 characters: a-z, 0-9, '_', '.', '-'",
            ));
        }
        Ok(Self(v.to_string()))
    }
}

/// A duration such as `90d`, `24h` or `15m` (humantime syntax), greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ttl(Duration);

impl Ttl {
    pub fn parse(field: &'static str, s: &str) -> Result<Self> {
        let t = s.trim();
        if t.starts_with('-') {
            return Err(Error::invalid(
                field,
                s,
                "a positive duration such as 90d, 24h or 15m",
            ));
        }
        let d = humantime::parse_duration(t).map_err(|e| {
            // humantime's own words name positions ("expected number at 0"): only
            // the unit hint is worth passing on.
            let why = match e {
                humantime::DurationError::UnknownUnit { unit, .. } => {
                    format!("; {unit:?} is not a unit (s, m, h, d, w)")
                }
                _ => String::new(),
            };
            Error::invalid(field, s, format!("a duration such as 90d, 24h or 15m{why}"))
        })?;
        // Whole seconds: token lifetimes are counted in them (`exp`, `expires_in`), so
        // `1ms` would be a token that is dead when issued.
        if d.subsec_nanos() != 0 || d.as_secs() == 0 || d.as_secs() > 100 * 365 * 86_400 {
            return Err(Error::invalid(
                field,
                s,
                "a duration of whole seconds, from 1s to 100 years",
            ));
        }
        Ok(Self(d))
    }
    pub fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
    pub fn secs(&self) -> i64 {
        self.0.as_secs() as i64
    }
    pub fn as_duration(&self) -> Duration {
        self.0
    }
}

/// In days, hours, minutes and seconds (`400d`, `1d 12h`), which `parse` reads back.
/// Not humantime's format: it counts months of 30.44 days and years of 365.25, so a
/// `400d` typed by an operator came back as `1year 1month 4days 7h 26m 24s`.
impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let parts = [
            (secs / 86_400, "d"),
            (secs % 86_400 / 3_600, "h"),
            (secs % 3_600 / 60, "m"),
            (secs % 60, "s"),
        ];
        let mut first = true;
        for (n, unit) in parts.into_iter().filter(|(n, _)| *n > 0) {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{n}{unit}")?;
            first = false;
        }
        if first {
            f.write_str("0s")?;
        }
        Ok(())
    }
}

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident, $field:literal { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Result<Self> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($s => Ok($name::$variant),)+
                    _ => Err(Error::invalid($field, s, format!("one of: {}", [$($s),+].join(", ")))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
    };
}

str_enum!(
    /// An operator's administrative role, least to most powerful.
    OperatorRole, "operator role" { Viewer => "viewer", Support => "support", Admin => "admin" }
);
str_enum!(
    /// Whether a user may sign in and use tokens.
    UserStatus, "status" { Active => "active", Disabled => "disabled" }
);
str_enum!(
    /// Whether support has enabled API access for a user yet.
    ApiAccess, "api access" { Pending => "pending", Enabled => "enabled" }
);

/// Current time as unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Formats unix seconds as RFC 3339 UTC (`2026-11-24T06:52:31Z`).
pub fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

/// New time-ordered id (UUID v7) as text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Serialises unix seconds as RFC 3339 UTC (for JSON output).
pub fn ser_ts<S: serde::Serializer>(ts: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ts))
}

/// Serialises optional unix seconds as RFC 3339 UTC or null.
pub fn ser_opt_ts<S: serde::Serializer>(
    ts: &Option<i64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match ts {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
#[allow(clippy::items_after_test_module)]
mod tests {
    use super::*;

    #[test]
    fn ttls_display_as_typed_and_read_back() {
        for (typed, shown) in [
            ("400d", "400d"),
            ("366d", "366d"),
            ("36h", "1d 12h"),
            ("90m", "1h 30m"),
            ("1d 1s", "1d 1s"),
            ("15m", "15m"),
        ] {
            let t = Ttl::parse("ttl", typed).unwrap();
            assert_eq!(t.to_string(), shown);
            assert_eq!(Ttl::parse("ttl", shown).unwrap(), t);
        }
    }

    #[test]
    fn domain_names() {
        assert_eq!(
            DomainName::parse("Free.Example.COM.").unwrap().as_str(),
            "free.example.com"
        );
        for bad in [
            "",
            "-a.com",
            "a..b",
            "a b.com",
            "exa_mple.com",
            "x'; drop table users;--",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad}");
        }
        // An internationalised name is refused with its ASCII spelling, which is taken.
        let e = DomainName::parse("B\u{fc}cher.example")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("(this name in ASCII: xn--bcher-kva.example)"),
            "{e}"
        );
        assert!(DomainName::parse("xn--bcher-kva.example").is_ok());
    }

    #[test]
    fn emails() {
        let e = Email::parse(" Alice@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Alice@Example.COM");
        assert_eq!(e.normalized(), "alice@example.com");
        for bad in [
            "alice",
            "a@b",
            "a b@c.com",
            "@x.com",
            "a@",
            "a@-x.com",
            "a\u{1b}]0;x\u{7}@x.com",
            "a..b@x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
        // One spelling per address: a decomposed accent is stored composed (the same
        // user as the composed spelling); full-width look-alikes are refused, with the
        // ordinary spelling in the message.
        let composed = Email::parse("jos\u{e9}@x.example").unwrap();
        let decomposed = Email::parse("jose\u{301}@x.example").unwrap();
        assert_eq!(composed.normalized(), decomposed.normalized());
        assert_eq!(decomposed.as_str(), "jos\u{e9}@x.example");
        let err = Email::parse("\u{ff41}dmin@x.example")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("full-width") && err.ends_with(": admin@x.example"),
            "{err}"
        );
        assert!(
            Email::parse("\u{fb01}nance@x.example").is_err(),
            "the fi ligature"
        );
        let long = format!("{}@x.example", "\u{fdfa}".repeat(20));
        let err = Email::parse(&long).unwrap_err().to_string();
        assert!(err.ends_with("(such as full-width letters)"), "{err}");
        assert!(Email::parse("b\u{fc}ro@m\u{fc}nchen.example").is_ok());
        // Look-alike letters of another alphabet within a part are refused, naming the
        // odd one out; an address wholly in one script, or parts in different ones, is
        // an address.
        let err = Email::parse("n\u{435}wbie@acme.example")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'\u{435}', U+0435"), "{err}");
        assert!(Email::parse("a@ex\u{430}mple.com").is_err(), "in the host");
        for ok in [
            "\u{438}\u{432}\u{430}\u{43d}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.example",
            "\u{438}\u{432}\u{430}\u{43d}@acme.example",
            "user-2024_x@acme.example",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn role_names_read_as_one_script_and_look_like_what_they_are() {
        let err = RoleName::parse("\u{3a1}artner").unwrap_err().to_string();
        assert!(err.contains("U+03A1"), "{err}");
        assert!(RoleName::parse("\u{41f}\u{430}\u{440}\u{442}\u{43d}\u{435}\u{440}").is_ok());
        let sk = |s: &str| RoleName::parse(s).unwrap().skeleton();
        assert_eq!(sk("Administrator"), sk("Adrninistrator"));
        assert_eq!(sk("Consumer1"), sk("Consumerl"));
        assert_ne!(sk("Partner"), sk("Partners"));
    }

    #[test]
    fn scope_names() {
        for ok in ["read", "send_documents", "a", "x.y:z-w_1"] {
            assert!(ScopeName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Read", "1read", "read write", "r!", &"a".repeat(65)] {
            let err = ScopeName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("^[a-z][a-z0-9_.:-]{0,63}$"), "{err}");
        }
        let l = ScopeName::parse_list("read, write read").unwrap();
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn names_reject_control_characters() {
        assert!(DisplayName::parse("Alice\u{1b}[2J").is_err());
        assert!(DisplayName::parse("Bob\u{202e}gpj.exe").is_err());
        assert!(DisplayName::parse(&"x".repeat(201)).is_err());
        assert_eq!(
            DisplayName::parse("  Alice Meyer ").unwrap().as_str(),
            "Alice Meyer"
        );
        assert!(RoleName::parse("Partner").is_ok());
        assert!(RoleName::parse("1abc").is_err());
    }

    #[test]
    fn station_identifiers() {
        assert_eq!(
            EuVatId::parse("de 123.456-789").unwrap().as_str(),
            "DE123456789"
        );
        assert!(EuVatId::parse("123").is_err());
        for bad in [
            "not a vat",
            "US123456789",
            "GR123456789",
            "DEABCDEFG",
            "ÄB12345",
        ] {
            assert!(EuVatId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            EuVatId::parse("el 123456789").unwrap().as_str(),
            "EL123456789"
        );
        assert_eq!(CountryCode::parse("fr").unwrap().as_str(), "FR");
        assert!(CountryCode::parse("FRA").is_err());
        // Two letters are not enough: the code must be assigned.
        for bad in ["QQ", "ZZ", "UK", "EL", "XI"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
        for ok in ["GB", "GR", "CH", "XK", "mt"] {
            assert!(CountryCode::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            RegistrationNumber::parse(" hrb   12345 ").unwrap().as_str(),
            "HRB 12345"
        );
    }

    #[test]
    fn ttls() {
        assert_eq!(Ttl::parse("ttl", "90d").unwrap().secs(), 90 * 86400);
        assert_eq!(Ttl::parse("ttl", "1h").unwrap().secs(), 3600);
        assert!(Ttl::parse("ttl", "0s").is_err());
        for sub in ["1ms", "1us", "1500ms"] {
            let e = Ttl::parse("ttl", sub).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{sub:?}")) && e.contains("whole seconds"),
                "{e}"
            );
        }
        assert!(Ttl::parse("ttl", "soon").is_err());
    }

    #[test]
    fn enums() {
        assert_eq!(OperatorRole::parse("Admin").unwrap(), OperatorRole::Admin);
        let e = OperatorRole::parse("root").unwrap_err().to_string();
        assert!(e.contains("viewer") && e.contains("admin"), "{e}");
        assert!(OperatorRole::Viewer < OperatorRole::Admin);
    }
}
