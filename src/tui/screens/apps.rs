//! Developer apps: third-party clients users consent to, with their consents.

use super::super::app::{App, detail_height};
use super::super::fmt::{date, safe};
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
    let apps = &app.apps;
    let consents_of = |id: &str| app.consent_counts.get(id).copied().unwrap_or(0);
    let rows: Vec<Row> = apps
        .items
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let on = i == apps.sel;
            let row = Row::new(vec![
                Cell::from(if on { "▶" } else { " " }),
                Cell::from(safe(&a.client_id)),
                Cell::from(safe(&a.name)),
                Cell::from(safe(&a.owner_email)),
                Cell::from(consents_of(&a.id).to_string()),
                Cell::from(date(a.created_at)),
            ]);
            if on { row.style(th.selected()) } else { row }
        })
        .collect();
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Length(16),
                Constraint::Fill(2),
                Constraint::Fill(3),
                Constraint::Length(8),
                Constraint::Length(10),
            ],
        )
        .header(
            Row::new(vec![
                "",
                "CLIENT ID",
                "NAME",
                "OWNER",
                "CONSENTS",
                "CREATED",
            ])
            .style(th.header()),
        )
        .block(block(
            th,
            format!("Developer apps ({})", apps.items.len()),
            true,
        )),
        list,
    );
    let (title, lines) = match apps.items.get(apps.sel) {
        Some(a) => {
            let users: Vec<String> = app
                .consents
                .iter()
                .filter(|c| c.app_id == a.id)
                .map(|c| format!("{} ({})", safe(&c.user_email), safe(&c.scopes)))
                .collect();
            (
                format!("app {}", safe(&a.client_id)),
                vec![
                    Line::raw(format!(
                        "scopes {} · domain {} · redirect {}",
                        safe(&a.scopes),
                        a.domain,
                        safe(&a.redirect_uris)
                    )),
                    Line::raw(match consents_of(&a.id) {
                        0 => "no user has consented yet".to_string(),
                        n if n as usize > users.len() => format!(
                            "{} consented, among them: {}",
                            super::super::fmt::thousands(n),
                            users.join(", ")
                        ),
                        _ => format!("consented: {}", users.join(", ")),
                    }),
                ],
            )
        }
        None if apps.loaded => (
            "no developer app".into(),
            vec![Line::raw("Press n to create one (admins).")],
        ),
        None => ("developer apps".into(), vec![]),
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(block(th, title, false))
            .wrap(Wrap { trim: false }),
        detail,
    );
}
