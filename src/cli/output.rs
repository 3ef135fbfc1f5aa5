//! Human tables and JSON output. User-supplied text is made inert before printing.

use keyward::text::inert;
use serde::Serialize;

/// Prints rows as an aligned table with a header.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| inert(&c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                s.push_str(&c);
            } else {
                let pad = widths[i] - c.chars().count();
                s.push_str(&c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

/// Prints one JSON document on stdout.
pub fn json<T: Serialize + ?Sized>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialisable"));
}

/// Prints `key  value` lines, values made inert.
pub fn fields(pairs: &[(&str, String)]) {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        println!("{k:w$}  {}", inert(v));
    }
}

pub fn date(ts: i64) -> String {
    keyward::model::rfc3339(ts)
        .get(..10)
        .unwrap_or_default()
        .to_string()
}

pub fn datetime(ts: i64) -> String {
    keyward::model::rfc3339(ts)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}
