//! API keys: client credentials of users, with owner, scopes, expiry and last use.

use super::super::app::{App, detail_height};
use super::super::fmt::{date, datetime, safe, span, thousands};
use super::super::ui::block;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let [list, detail] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(detail_height(f.area().height)),
    ])
    .areas(area);
    let keys = &app.keys;
    let height = list.height.saturating_sub(3) as usize;
    let first = keys.sel.saturating_sub(height.saturating_sub(1));
    let rows: Vec<Row> = keys
        .items
        .iter()
        .enumerate()
        .skip(first)
        .take(height.max(1))
        .map(|(i, k)| {
            let on = i == keys.sel;
            let expires = match k.expires_at {
                Some(t) if t <= app.now => "expired".to_string(),
                Some(t) => format!("in {}", span(t - app.now)),
                None => "never".into(),
            };
            let row = Row::new(vec![
                Cell::from(if on { "▶" } else { " " }),
                Cell::from(safe(&k.client_id)),
                Cell::from(safe(&k.user_email)),
                Cell::from(safe(&k.scopes)),
                Cell::from(expires),
                Cell::from(k.last_used_at.map_or("never".to_string(), date)),
            ]);
            if on { row.style(th.selected()) } else { row }
        })
        .collect();
    let shown = keys.items.len() as i64;
    let title = if shown < app.keys_total {
        format!(
            "API keys ({} of {})",
            thousands(shown),
            thousands(app.keys_total)
        )
    } else {
        format!("API keys ({})", thousands(shown))
    };
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Length(16),
                Constraint::Fill(3),
                Constraint::Fill(2),
                Constraint::Length(9),
                Constraint::Length(10),
            ],
        )
        .header(
            Row::new(vec![
                "",
                "CLIENT ID",
                "OWNER",
                "SCOPES",
                "EXPIRES",
                "LAST USE",
            ])
            .style(th.header()),
        )
        .block(block(th, title, true)),
        list,
    );
    let (title, lines) = match keys.items.get(keys.sel) {
        Some(k) => (
            format!("key {}", safe(&k.client_id)),
            vec![
                Line::raw(format!(
                    "name {} · owner {} · domain {}",
                    safe(&k.name),
                    safe(&k.user_email),
                    k.domain
                )),
                Line::raw(format!(
                    "scopes {} · created {} · expires {} · last used {}",
                    safe(&k.scopes),
                    date(k.created_at),
                    k.expires_at.map_or("never".to_string(), date),
                    k.last_used_at.map_or("never".to_string(), datetime)
                )),
            ],
        ),
        None if keys.loaded => (
            "no API key".into(),
            vec![Line::raw(
                "Press n to create one, or enable API access for a user (Users, a).",
            )],
        ),
        None => ("API keys".into(), vec![]),
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(block(th, title, false))
            .wrap(Wrap { trim: false }),
        detail,
    );
}
