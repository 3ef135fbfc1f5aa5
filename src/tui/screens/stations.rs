//! Stations: endpoint identities owned by users. Keyset-paged by creation or (`s`) by
//! name.

use super::super::app::App;
use super::super::fmt::{date, safe};
use super::super::ui::{ListView, list_screen};
use super::super::widgets::detail::{Detail, field};
use keyward::store::directory::StationRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

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
    list_screen(
        app,
        f,
        area,
        ListView {
            title: "Stations",
            list: &app.stations,
            columns: &cols,
            cells: &cells,
            detail: detail(app),
            empty: "no stations match",
        },
    );
}

/// The selected station's details.
pub fn detail(app: &App) -> Detail {
    let Some(s) = app.stations.selected() else {
        return Detail::new("no station selected");
    };
    Detail::new(safe(&s.name))
        .line(vec![
            field("owner", safe(&s.user_email)),
            field("domain", &s.domain),
        ])
        .line(vec![
            field(
                "EU VAT",
                s.eu_vat_id
                    .as_deref()
                    .map(safe)
                    .unwrap_or_else(|| "—".into()),
            ),
            field(
                "registration",
                Some(reg(s))
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "—".into()),
            ),
            field("created", date(s.created_at)),
        ])
        .line(vec![field("id", &s.id)])
}
