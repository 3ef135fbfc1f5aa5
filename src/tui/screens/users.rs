//! Users: the paged list of every user, filterable by email prefix or substring.

use super::super::app::App;
use super::super::fmt::{date, safe, thousands};
use super::super::ui::{ListView, list_screen};
use super::super::widgets::detail::{Detail, field, text};
use keyward::store::directory::UserRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

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
    list_screen(
        app,
        f,
        area,
        ListView {
            title: "Users",
            list: &app.users,
            columns: &cols,
            cells: &cells,
            detail: detail(app),
            empty: "no users match; n creates one",
        },
    );
}

/// The selected user's details (what the list row does not hold comes with the
/// selection, a moment later).
pub fn detail(app: &App) -> Detail {
    let (u, d) = match (app.users.selected(), app.selected_detail()) {
        (Some(u), Some(d)) => (u, d),
        (Some(u), None) => return Detail::new(safe(&u.email)).line(vec![text("…")]),
        _ => return Detail::new("no user selected"),
    };
    Detail::new(safe(&u.email))
        .line(vec![
            field(
                "role",
                format!("{} ({})", safe(&u.role), d.effective_scopes.join(" ")),
            ),
            field("status", &u.status),
            field("keys", d.keys.to_string()),
            field("apps", d.apps.to_string()),
            field("active tokens", thousands(d.active_tokens)),
        ])
        .line(vec![
            field("name", safe(&u.name)),
            field("domain", &u.domain),
            field("API access", &u.api_access),
            field("password", if u.has_password { "set" } else { "none" }),
        ])
        .line(vec![
            field("created", date(u.created_at)),
            field("affiliate", &u.affiliate_id),
            field(
                "stations",
                match d.stations.len() {
                    0 => "none".to_string(),
                    _ => d
                        .stations
                        .iter()
                        .map(|s| safe(&s.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            ),
        ])
}
