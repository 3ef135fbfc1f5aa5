//! Formatting helpers shared by the screens. Every user-supplied string goes through
//! [`safe`] (the core's `inert`) before it becomes a `Span`.

use keyward::text::inert;

/// User-supplied text made inert for the terminal.
pub fn safe(s: &str) -> String {
    inert(s).into_owned()
}

/// `YYYY-MM-DD` of a unix timestamp (UTC).
pub fn date(ts: i64) -> String {
    keyward::model::rfc3339(ts)
        .get(..10)
        .unwrap_or_default()
        .to_string()
}

/// `YYYY-MM-DD HH:MM` of a unix timestamp (UTC).
pub fn datetime(ts: i64) -> String {
    let s = keyward::model::rfc3339(ts).replace('T', " ");
    s.get(..16).unwrap_or(&s).to_string()
}

/// A short distance between two instants: `45s`, `12m`, `3h`, `6d`, `2y`.
pub fn span(secs: i64) -> String {
    let s = secs.abs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        86_400..31_536_000 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Cuts `s` to `w` columns, marking the cut with `…`.
pub fn trunc(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(w - 1).collect();
    out.push('…');
    out
}

/// Keeps the last `w` columns of `s`, marking the cut with `…` (for ids whose head is
/// shared, as UUIDv7 token ids begin with their issue time).
pub fn tail(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::from('…');
    out.extend(s.chars().skip(n - (w - 1)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(100000), "100,000");
        assert_eq!(thousands(12), "12");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(span(7200), "2h");
        assert_eq!(span(3 * 86400 + 5), "3d");
        assert_eq!(trunc("abcdef", 4), "abc…");
        assert_eq!(tail("abcdef", 4), "…def");
        assert_eq!(tail("abc", 4), "abc");
        assert_eq!(tail("abc", 0), "");
        assert_eq!(safe("a\u{1b}[2Jb"), "a\\e[2Jb");
    }
}
