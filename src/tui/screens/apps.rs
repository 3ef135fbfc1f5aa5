//! Developer apps: third-party clients users consent to, with their consents.

use super::super::app::{App, detail_height};
use super::super::fmt::{date, safe};
use super::super::ui::{detail_pane, scrolled, whole_block};
use super::super::widgets::detail::{Detail, field, text};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Cell, Row, Table};

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
    let frame = whole_block(app, f, list, "Developer apps", apps);
    scrolled(
        f,
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Length(18),
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
        .block(frame),
        list,
        apps.sel,
    );
    detail_pane(app, f, detail, &self::detail(app));
}

/// The selected app's details, with the consents loaded for it.
pub fn detail(app: &App) -> Detail {
    let apps = &app.apps;
    let Some(a) = apps.items.get(apps.sel) else {
        if !apps.filter.value().is_empty() {
            return Detail::new("no developer app matches")
                .line(vec![text("Esc clears the filter.")]);
        }
        if apps.loaded {
            return Detail::new("no developer app")
                .line(vec![text("Press n to create one (admins).")]);
        }
        return Detail::new("developer apps");
    };
    let users: Vec<String> = app
        .consents
        .iter()
        .filter(|c| c.app_id == a.id)
        .map(|c| format!("{} ({})", safe(&c.user_email), safe(&c.scopes)))
        .collect();
    let count = app.consent_counts.get(&a.id).copied().unwrap_or(0);
    Detail::new(format!("app {}", safe(&a.client_id)))
        .line(vec![
            field("scopes", safe(&a.scopes)),
            field("domain", &a.domain),
            field("redirect", safe(&a.redirect_uris)),
        ])
        .line(vec![match count {
            0 => text("no user has consented yet"),
            n if n as usize > users.len() => field(
                "consented",
                format!(
                    "{}, among them: {}",
                    super::super::fmt::thousands(n),
                    users.join(", ")
                ),
            ),
            _ => field("consented", users.join(", ")),
        }])
        .line(vec![
            field("name", safe(&a.name)),
            field("owner", safe(&a.owner_email)),
        ])
}
