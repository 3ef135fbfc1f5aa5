//! API keys: client credentials of users, with owner, scopes, expiry and last use.
//! Keyset-paged, newest first; `/` matches a client id prefix or the owner.

use super::super::app::App;
use super::super::fmt::{date, datetime, safe, span};
use super::super::ui::{ListView, list_screen};
use keyward::store::credentials::KeyRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;

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
    let (title, detail) = match app.keys.selected() {
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
        None if app.keys.loaded && app.keys.filter.value().is_empty() => (
            "no API key".into(),
            vec![Line::raw(
                "Press n to create one, or enable API access for a user (Users, a).",
            )],
        ),
        None => ("no key selected".into(), vec![]),
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
            detail_title: title,
            detail,
            empty: "no API key matches",
        },
    );
}
