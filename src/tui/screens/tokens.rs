//! Tokens: the record of every access token minted (read-only until the token
//! service's revoke/inspect arrive).

use super::super::app::App;
use super::super::fmt::{datetime, safe, span, trunc};
use super::super::ui::{ListView, list_screen};
use keyward::store::console::TokenRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;

pub fn state(t: &TokenRow, now: i64) -> String {
    match t.revoked_at {
        Some(_) => "✗ revoked".into(),
        None if t.expires_at <= now => "✗ expired".into(),
        None => format!("✓ {} left", span(t.expires_at - now)),
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let now = app.now;
    let cols = [
        ("JTI", Constraint::Length(12)),
        ("USER", Constraint::Fill(3)),
        ("CLIENT", Constraint::Fill(2)),
        ("SCOPES", Constraint::Fill(2)),
        ("ISSUED", Constraint::Length(16)),
        ("STATE", Constraint::Length(12)),
    ];
    let cells = move |t: &TokenRow| {
        vec![
            trunc(&safe(&t.jti), 12),
            safe(&t.user_email),
            safe(&t.client_id),
            safe(&t.scopes),
            datetime(t.issued_at),
            state(t, now),
        ]
    };
    let (title, detail) = match app.tokens.selected() {
        Some(t) => (
            format!("token {}", safe(&t.jti)),
            vec![
                Line::raw(format!(
                    "user {} · domain {} · client {}",
                    safe(&t.user_email),
                    t.domain,
                    safe(&t.client_id)
                )),
                Line::raw(format!("scope {}", safe(&t.scopes))),
                Line::raw(format!(
                    "issued {} UTC · expires {} UTC · {}",
                    datetime(t.issued_at),
                    datetime(t.expires_at),
                    state(t, now)
                )),
            ],
        ),
        None => ("no token selected".into(), vec![]),
    };
    list_screen(
        app,
        f,
        area,
        ListView {
            title: "Tokens",
            list: &app.tokens,
            columns: &cols,
            cells: &cells,
            detail_title: title,
            detail,
            empty: "no token records match",
        },
    );
}
