//! API keys: client credentials of users, with owner, scopes, expiry and last use.
//! Keyset-paged, newest first (`s`: by last use); `/` matches a client id prefix or the
//! owner.

use super::super::app::App;
use super::super::fmt::{date, datetime, safe, span};
use super::super::ui::{ListView, list_screen};
use super::super::widgets::detail::{Detail, field, text};
use keyward::store::credentials::KeyRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let now = app.now;
    let cols = [
        ("CLIENT ID", Constraint::Length(16)),
        ("OWNER", Constraint::Fill(3)),
        ("SCOPES", Constraint::Fill(2)),
        ("EXPIRES", Constraint::Length(9)),
        ("LAST USE", Constraint::Length(10)),
    ];
    let cells = move |k: &KeyRow| {
        vec![
            safe(&k.client_id),
            safe(&k.user_email),
            safe(&k.scopes),
            match k.expires_at {
                Some(t) if t <= now => "expired".to_string(),
                Some(t) => format!("in {}", span(t - now)),
                None => "never".into(),
            },
            k.last_used_at.map_or("never".to_string(), date),
        ]
    };
    list_screen(
        app,
        f,
        area,
        ListView {
            title: "API keys",
            list: &app.keys,
            columns: &cols,
            cells: &cells,
            detail: detail(app),
            empty: "no API key matches",
        },
    );
}

/// The selected key's details.
pub fn detail(app: &App) -> Detail {
    let Some(k) = app.keys.selected() else {
        if app.keys.loaded && app.keys.filter.value().is_empty() {
            return Detail::new("no API key").line(vec![text(
                "Press n to create one, or enable API access for a user (Users, a).",
            )]);
        }
        return Detail::new("no key selected");
    };
    Detail::new(format!("key {}", safe(&k.client_id)))
        .line(vec![
            field("name", safe(&k.name)),
            field("owner", safe(&k.user_email)),
            field("domain", &k.domain),
        ])
        .line(vec![
            field("scopes", safe(&k.scopes)),
            field("created", date(k.created_at)),
            field("expires", k.expires_at.map_or("never".to_string(), date)),
            field(
                "last used",
                k.last_used_at.map_or("never".to_string(), datetime),
            ),
        ])
        .line(vec![
            field(
                "refresh tokens",
                if k.issue_refresh {
                    "issued"
                } else {
                    "not issued"
                },
            ),
            field(
                "rate limit",
                if k.rate_exempt { "exempt" } else { "applies" },
            ),
        ])
}
