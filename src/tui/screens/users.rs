//! Users: the paged list of every user, filterable by email prefix or substring.

use super::super::app::App;
use super::super::fmt::{date, safe, thousands};
use super::super::ui::{ListView, list_screen};
use keyward::store::directory::UserRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let wide = area.width >= 110;
    let mut cols = vec![
        ("EMAIL", Constraint::Fill(5)),
        ("NAME", Constraint::Fill(2)),
        ("ROLE", Constraint::Length(9)),
        ("API", Constraint::Length(7)),
        ("STATUS", Constraint::Length(10)),
        ("CREATED", Constraint::Length(10)),
    ];
    if wide {
        cols.insert(2, ("DOMAIN", Constraint::Fill(2)));
    }
    let cells = move |u: &UserRow| {
        let mut c = vec![safe(&u.email), safe(&u.name)];
        if wide {
            c.push(u.domain.clone());
        }
        c.extend([
            safe(&u.role),
            u.api_access.clone(),
            if u.status == "active" {
                "active".into()
            } else {
                "✗ disabled".into()
            },
            date(u.created_at),
        ]);
        c
    };
    let (title, detail) = match (app.users.selected(), app.selected_detail()) {
        (Some(u), Some(d)) => (
            safe(&u.email),
            vec![
                Line::raw(format!(
                    "role {} ({}) · {} · {} station(s) · {} key(s) · {} app(s) · {} active token(s)",
                    safe(&u.role),
                    d.effective_scopes.join(" "),
                    u.status,
                    d.stations.len(),
                    d.keys,
                    d.apps,
                    thousands(d.active_tokens)
                )),
                Line::raw(format!(
                    "name {} · domain {} · API access {} · password {}",
                    safe(&u.name),
                    u.domain,
                    u.api_access,
                    if u.has_password { "set" } else { "none" }
                )),
                Line::raw(format!(
                    "created {} · affiliate {} · stations: {}",
                    date(u.created_at),
                    u.affiliate_id,
                    d.stations
                        .iter()
                        .map(|s| safe(&s.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ],
        ),
        (Some(u), None) => (safe(&u.email), vec![Line::raw("…")]),
        _ => ("no user selected".into(), vec![]),
    };
    list_screen(
        app,
        f,
        area,
        ListView {
            title: "Users",
            list: &app.users,
            columns: &cols,
            cells: &cells,
            detail_title: title,
            detail,
            empty: "no users match; n creates one",
        },
    );
}
