//! Stations: endpoint identities owned by users.

use super::super::app::App;
use super::super::fmt::{date, safe};
use super::super::ui::{ListView, list_screen};
use keyward::store::directory::StationRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;

fn reg(s: &StationRow) -> String {
    match (&s.country_code, &s.registration_number) {
        (Some(c), Some(r)) => format!("{c}:{}", safe(r)),
        _ => String::new(),
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let cols = [
        ("NAME", Constraint::Fill(3)),
        ("OWNER", Constraint::Fill(3)),
        ("DOMAIN", Constraint::Fill(2)),
        ("EU VAT", Constraint::Length(14)),
        ("CREATED", Constraint::Length(10)),
    ];
    let cells = |s: &StationRow| {
        vec![
            safe(&s.name),
            safe(&s.user_email),
            s.domain.clone(),
            s.eu_vat_id.as_deref().map(safe).unwrap_or_default(),
            date(s.created_at),
        ]
    };
    let (title, detail) = match app.stations.selected() {
        Some(s) => (
            safe(&s.name),
            vec![
                Line::raw(format!(
                    "owner {} · domain {}",
                    safe(&s.user_email),
                    s.domain
                )),
                Line::raw(format!(
                    "EU VAT {} · registration {} · created {}",
                    s.eu_vat_id
                        .as_deref()
                        .map(safe)
                        .unwrap_or_else(|| "—".into()),
                    Some(reg(s))
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| "—".into()),
                    date(s.created_at)
                )),
                Line::raw(format!("id {}", s.id)),
            ],
        ),
        None => ("no station selected".into(), vec![]),
    };
    list_screen(
        app,
        f,
        area,
        ListView {
            title: "Stations",
            list: &app.stations,
            columns: &cols,
            cells: &cells,
            detail_title: title,
            detail,
            empty: "no stations match",
        },
    );
}
