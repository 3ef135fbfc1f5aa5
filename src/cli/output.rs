//! Human tables and JSON output. User-supplied text is made inert before printing.

use keyward::text::inert;
use serde::Serialize;

/// Rows fetched per page by [`paged`].
const PAGE: u64 = 1000;

/// Prints up to `limit` rows (0: all) fetched page by page (keyset paging: `fetch`
/// gets how many rows it may return and keeps its own cursor), in constant memory:
/// a JSON array streamed row by row, or tables of at most a page each; `none` when
/// nothing matches.
pub async fn paged<T: Serialize>(
    js: bool,
    limit: u64,
    headers: &[&str],
    none: &str,
    mut fetch: impl AsyncFnMut(i64) -> super::R<Vec<T>>,
    row: impl Fn(&T) -> Vec<String>,
) -> super::R {
    let mut printed = 0u64;
    let mut rows = Vec::new();
    if js {
        print!("[");
    }
    loop {
        let want = if limit == 0 {
            PAGE
        } else {
            (limit - printed).min(PAGE)
        };
        if want == 0 {
            break;
        }
        let page = fetch(want as i64).await?;
        for item in &page {
            if js {
                print!(
                    "{}\n  {}",
                    if printed == 0 { "" } else { "," },
                    serde_json::to_string(item).expect("serialisable")
                );
            } else {
                rows.push(row(item));
                if rows.len() as u64 >= PAGE {
                    table(headers, std::mem::take(&mut rows));
                }
            }
            printed += 1;
        }
        if (page.len() as u64) < want {
            break;
        }
    }
    if js {
        println!("{}]", if printed == 0 { "" } else { "\n" });
    } else if printed == 0 {
        println!("{none}");
    } else if !rows.is_empty() {
        table(headers, rows);
    }
    Ok(())
}

/// Prints rows as an aligned table with a header.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        // A header over nothing reads like a listing that failed.
        println!("(none)");
        return;
    }
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
