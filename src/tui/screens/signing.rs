//! Signing keys: the keys that sign tokens, which one is active, what each still
//! signs.

use super::super::app::{App, detail_height};
use super::super::fmt::{date, safe, thousands};
use super::super::ui::{detail_pane, scrolled, whole_block};
use super::super::widgets::detail::{Detail, field, text};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Cell, Row, Table};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let [list, detail] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(detail_height(f.area().height)),
    ])
    .areas(area);
    let ks = &app.signing;
    let rows: Vec<Row> = ks
        .items
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let on = i == ks.sel;
            let row = Row::new(vec![
                Cell::from(if on { "▶" } else { " " }),
                Cell::from(safe(&k.kid)),
                Cell::from(k.alg.clone()),
                Cell::from(k.status.clone()),
                Cell::from(if k.published { "yes" } else { "no" }),
                Cell::from(thousands(k.live_tokens)),
                Cell::from(date(k.created_at)),
            ]);
            if on { row.style(th.selected()) } else { row }
        })
        .collect();
    let frame = whole_block(app, f, list, "Signing keys", ks);
    scrolled(
        f,
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Fill(2),
                Constraint::Length(6),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(11),
                Constraint::Length(10),
            ],
        )
        .header(
            Row::new(vec![
                "",
                "KID",
                "ALG",
                "STATUS",
                "PUBLISHED",
                "LIVE TOKENS",
                "CREATED",
            ])
            .style(th.header()),
        )
        .block(frame),
        list,
        ks.sel,
    );
    detail_pane(app, f, detail, &self::detail(app));
}

/// The selected signing key's details.
pub fn detail(app: &App) -> Detail {
    let ks = &app.signing;
    let Some(k) = ks.items.get(ks.sel) else {
        if !ks.filter.value().is_empty() {
            return Detail::new("no signing key matches")
                .line(vec![text("Esc clears the filter.")]);
        }
        return Detail::new("signing keys");
    };
    Detail::new(format!("signing key {}", safe(&k.kid)))
        .line(vec![
            field("alg", &k.alg),
            field("status", &k.status),
            text(if k.published {
                "in the JWK Set"
            } else {
                "never published (shared secret)"
            }),
            field("signs", format!("{} live token(s)", thousands(k.live_tokens))),
        ])
        .line(vec![text(if k.status == "active" {
            "New tokens are signed with it. n rotates to a new key."
        } else {
            "Verify-only: x retires it (refused while it signs live tokens, unless they are revoked)."
        })])
}
