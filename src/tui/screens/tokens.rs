//! Tokens: the record of every access token minted; revoke one, or inspect a token
//! pasted in.

use super::super::app::App;
use super::super::fmt::{datetime, safe, span, tail};
use super::super::ui::{ListView, list_screen};
use super::super::widgets::detail::{Detail, field};
use keyward::store::console::TokenRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

pub fn state(t: &TokenRow, now: i64) -> String {
    match t.revoked_at {
        Some(_) => "✗ revoked".into(),
        None if t.expires_at <= now => "✗ expired".into(),
        None => format!("✓ {} left", span(t.expires_at - now)),
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let now = app.now;
    // The time column is the one the list is sorted by.
    let by_expiry = app.tokens.sort == 1;
    let cols = [
        ("JTI", Constraint::Length(12)),
        ("USER", Constraint::Fill(3)),
        ("CLIENT", Constraint::Fill(2)),
        ("SCOPES", Constraint::Fill(2)),
        (
            if by_expiry { "EXPIRES" } else { "ISSUED" },
            Constraint::Length(16),
        ),
        ("STATE", Constraint::Length(12)),
    ];
    let cells = move |t: &TokenRow| {
        vec![
            // A token id's head is its issue time, shared by its neighbours; its tail
            // tells them apart (the details show it whole).
            tail(&safe(&t.jti), 12),
            safe(&t.user_email),
            safe(&t.client_id),
            safe(&t.scopes),
            datetime(if by_expiry { t.expires_at } else { t.issued_at }),
            state(t, now),
        ]
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
            detail: detail(app),
            empty: "no token records match",
        },
    );
}

/// The selected token's details.
pub fn detail(app: &App) -> Detail {
    let Some(t) = app.tokens.selected() else {
        return Detail::new("no token selected");
    };
    let mut d = Detail::new(format!("token {}", safe(&t.jti)))
        .line(vec![
            field("user", safe(&t.user_email)),
            field("domain", &t.domain),
            field("client", safe(&t.client_id)),
        ])
        .line(vec![field("scope", safe(&t.scopes))])
        .line(vec![
            field("issued", format!("{} UTC", datetime(t.issued_at))),
            field("expires", format!("{} UTC", datetime(t.expires_at))),
            field(
                "state",
                match t.revoked_at {
                    Some(r) => format!("✗ revoked {} UTC", datetime(r)),
                    None => state(t, app.now),
                },
            ),
        ]);
    if t.revoked_by.is_some() || t.revoke_reason.is_some() {
        d = d.line(vec![
            field("revoked by", safe(t.revoked_by.as_deref().unwrap_or("?"))),
            field("reason", safe(t.revoke_reason.as_deref().unwrap_or(""))),
        ]);
    }
    d.line(vec![
        field("issued by", safe(&t.source)),
        field("signing key", safe(&t.kid)),
    ])
}
