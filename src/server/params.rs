//! Request parameters: `application/x-www-form-urlencoded` (RFC 6749) or JSON bodies,
//! query strings, and HTTP Basic client credentials. Strict: a parameter given twice is
//! an error (RFC 6749 §3.2), so is an unknown content type or a malformed body.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use std::collections::HashMap;

#[derive(Debug)]
pub enum ParamError {
    /// The body's content type is neither form nor JSON.
    ContentType,
    Malformed(String),
    Duplicate(String),
}

impl ParamError {
    pub fn message(&self) -> String {
        match self {
            ParamError::ContentType => {
                "send the parameters as application/x-www-form-urlencoded or application/json"
                    .into()
            }
            ParamError::Malformed(m) => m.clone(),
            ParamError::Duplicate(p) => format!("parameter {p} was given more than once"),
        }
    }
}

/// Named string parameters.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
    /// Members of a JSON body set aside as no parameter (a list or an object), by
    /// what they were.
    set_aside: HashMap<String, &'static str>,
}

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.values
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    /// `k`'s value, or why there is none, for an `invalid_request`: it is missing, or
    /// it came as a JSON list or object, which no parameter Keyward reads takes.
    pub fn require(&self, k: &str) -> Result<&str, String> {
        self.get(k).ok_or_else(|| match self.not_a_string(k) {
            Some(m) => m,
            None => format!("{k} is required"),
        })
    }
    /// Says so when `k` came as a JSON list or object rather than a string.
    pub fn not_a_string(&self, k: &str) -> Option<String> {
        self.set_aside
            .get(k)
            .map(|what| format!("{k} must be a string, not {what}"))
    }
    fn insert(&mut self, k: String, v: String) -> Result<(), ParamError> {
        if self.values.contains_key(&k) || self.set_aside.contains_key(&k) {
            return Err(ParamError::Duplicate(k));
        }
        self.values.insert(k, v);
        Ok(())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one form-urlencoded component (`+` is a space).
pub fn form_decode(s: &[u8]) -> Result<String, ParamError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let v = s
                    .get(i + 1)
                    .and_then(|a| hex(*a))
                    .zip(s.get(i + 2).and_then(|b| hex(*b)))
                    .ok_or_else(|| ParamError::Malformed("bad percent-encoding".into()))?;
                out.push(v.0 * 16 + v.1);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ParamError::Malformed("parameters must be UTF-8".into()))
}

/// Parses `a=1&b=2`.
pub fn parse_form(body: &[u8]) -> Result<Params, ParamError> {
    let mut p = Params::default();
    for pair in body.split(|b| *b == b'&').filter(|s| !s.is_empty()) {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let k = form_decode(k)?;
        if k.is_empty() {
            return Err(ParamError::Malformed("a parameter without a name".into()));
        }
        p.insert(k, form_decode(v)?)?;
    }
    Ok(p)
}

/// Parses a body by its content type. An empty body without a content type is empty.
pub fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Params, ParamError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match ct.as_deref() {
        None if body.is_empty() => Ok(Params::default()),
        Some("application/x-www-form-urlencoded") => parse_form(body),
        Some("application/json") => parse_json(body),
        _ => Err(ParamError::ContentType),
    }
}

fn parse_json(body: &[u8]) -> Result<Params, ParamError> {
    // Duplicate keys are detected by deserialising into a list of pairs.
    struct Pairs(Vec<(String, serde_json::Value)>);
    impl<'de> serde::Deserialize<'de> for Pairs {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Pairs, A::Error> {
                    let mut v = Vec::new();
                    while let Some(e) = m.next_entry()? {
                        v.push(e);
                    }
                    Ok(Pairs(v))
                }
            }
            d.deserialize_map(V)
        }
    }
    let pairs: Pairs = serde_json::from_slice(body)
        .map_err(|e| ParamError::Malformed(format!("the body is not a JSON object: {e}")))?;
    let mut p = Params::default();
    // A null is an absent value, but one that was given: given again, a duplicate.
    let mut nulls = std::collections::HashSet::new();
    for (k, v) in pairs.0 {
        let given = p.values.contains_key(&k) || p.set_aside.contains_key(&k);
        if nulls.contains(&k) || (v.is_null() && given) {
            return Err(ParamError::Duplicate(k));
        }
        let s = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => {
                nulls.insert(k);
                continue;
            }
            // A list of strings is a list of scopes, joined as `scope` is written.
            serde_json::Value::Array(items) if k == "scope" || k == "scopes" => {
                let mut parts = Vec::new();
                for i in items {
                    match i {
                        serde_json::Value::String(s) => parts.push(s),
                        _ => {
                            return Err(ParamError::Malformed(format!(
                                "{k} must be a string or a list of strings"
                            )));
                        }
                    }
                }
                parts.join(" ")
            }
            // Every other parameter Keyward reads is a string: a list or an object is
            // nothing it knows, so it is set aside, as RFC 6749 §3.1 asks of unknown
            // parameters (a known one given so is then missing, and said to be a
            // list or an object: see [`Params::require`]).
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                let what = if v.is_array() { "a list" } else { "an object" };
                if p.values.contains_key(&k) || p.set_aside.insert(k.clone(), what).is_some() {
                    return Err(ParamError::Duplicate(k));
                }
                continue;
            }
        };
        p.insert(k, s)?;
    }
    Ok(p)
}

/// HTTP Basic credentials (RFC 6749 §2.3.1: both parts form-urlencoded).
pub enum Basic {
    None,
    Bad,
    Creds(String, String),
}

pub fn basic(headers: &HeaderMap) -> Basic {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Basic::None;
    };
    let Ok(v) = v.to_str() else {
        return Basic::Bad;
    };
    let Some((scheme, rest)) = v.trim().split_once(' ') else {
        return if v.trim().eq_ignore_ascii_case("basic") {
            Basic::Bad
        } else {
            Basic::None
        };
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Basic::None;
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
        return Basic::Bad;
    };
    let Some(i) = raw.iter().position(|b| *b == b':') else {
        return Basic::Bad;
    };
    match (form_decode(&raw[..i]), form_decode(&raw[i + 1..])) {
        (Ok(u), Ok(p)) if !u.is_empty() => Basic::Creds(u, p),
        _ => Basic::Bad,
    }
}

/// What a request's `Authorization` header holds for a protected resource.
#[derive(Debug, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No header, or another scheme: no authentication information (RFC 6750 §3: a
    /// challenge without an error code).
    Absent,
    /// The Bearer scheme with a token that is not one `b64token` (empty, several
    /// words, other characters): `invalid_request` (RFC 6750 §3.1).
    Malformed,
    Token(&'a str),
}

/// The bearer token of an `Authorization` header (RFC 6750 §2.1).
pub fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Bearer::Absent;
    };
    let Ok(v) = v.to_str() else {
        return Bearer::Malformed;
    };
    let v = v.trim();
    let (scheme, tok) = v.split_once(' ').unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Bearer::Absent;
    }
    let tok = tok.trim();
    let b64 = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    let body = tok.trim_end_matches('=');
    if body.is_empty() || !body.chars().all(b64) {
        return Bearer::Malformed;
    }
    Bearer::Token(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, v.parse().unwrap());
            m
        };
        assert_eq!(bearer(&HeaderMap::new()), Bearer::Absent);
        assert_eq!(bearer(&h("Basic dXNlcjpwdw==")), Bearer::Absent);
        assert_eq!(
            bearer(&h("bearer abc.DEF-_~+/==")),
            Bearer::Token("abc.DEF-_~+/==")
        );
        assert_eq!(bearer(&h("Bearer  abc ")), Bearer::Token("abc"));
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer ==",
            "Bearer a\"b",
        ] {
            assert_eq!(bearer(&h(bad)), Bearer::Malformed, "{bad}");
        }
    }

    #[test]
    fn forms() {
        let p = parse_form(b"grant_type=client_credentials&scope=read+write&x=%41").unwrap();
        assert_eq!(p.get("scope"), Some("read write"));
        assert_eq!(p.get("x"), Some("A"));
        assert!(matches!(
            parse_form(b"a=1&a=2"),
            Err(ParamError::Duplicate(_))
        ));
        assert!(parse_form(b"a=%zz").is_err());
        assert!(parse_form(b"a=%ff").is_err());
    }

    #[test]
    fn json() {
        let p = parse_json(br#"{"a":"x","scope":["read","write"],"n":3}"#).unwrap();
        assert_eq!(p.get("scope"), Some("read write"));
        assert_eq!(p.get("n"), Some("3"));
        assert!(matches!(
            parse_json(br#"{"a":"x","a":"y"}"#),
            Err(ParamError::Duplicate(_))
        ));
        assert!(parse_json(b"[1]").is_err());
        // Unknown structured parameters are ignored (RFC 6749 §3.1), and a known one
        // given as a list or an object is missing, not coerced into "a b".
        let p = parse_json(
            br#"{"grant_type":"password","meta":{"b":1},"username":["a","b"],"password":{"$ne":""}}"#,
        )
        .unwrap();
        assert_eq!(p.get("grant_type"), Some("password"));
        assert_eq!(p.get("meta"), None);
        assert_eq!(p.get("username"), None);
        assert_eq!(p.get("password"), None);
        // ... and said to be, where it is required.
        assert_eq!(p.require("grant_type"), Ok("password"));
        assert_eq!(
            p.require("username"),
            Err("username must be a string, not a list".to_string())
        );
        assert_eq!(
            p.require("password"),
            Err("password must be a string, not an object".to_string())
        );
        assert_eq!(p.require("code"), Err("code is required".to_string()));
        assert_eq!(p.not_a_string("grant_type"), None);
        // Given twice, once so: still a duplicate.
        for body in [
            &br#"{"username":"a","username":["a"]}"#[..],
            br#"{"username":["a"],"username":"a"}"#,
            br#"{"username":{},"username":[]}"#,
            br#"{"username":null,"username":"a"}"#,
            br#"{"username":"a","username":null}"#,
            br#"{"username":null,"username":null}"#,
        ] {
            assert!(
                matches!(parse_json(body), Err(ParamError::Duplicate(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse_json(br#"{"scope":["read",1]}"#).is_err());
    }
}
