//! Operators: OS accounts allowed to administer, with their role and domains.

use super::super::app::{App, detail_height};
use super::super::fmt::{date, safe};
use super::super::ui::{detail_pane, scrolled, whole_block};
use super::super::widgets::detail::{Detail, field, text};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Cell, Row, Table};

fn can(role: &str) -> &'static str {
    match role {
        "admin" => {
            "everything in its domains; with no domain limit also roles, scopes, operators, settings"
        }
        "support" => {
            "create users and stations, enable API access, mint and revoke within a user's role"
        }
        _ => "read only",
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let [list, detail] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(detail_height(f.area().height)),
    ])
    .areas(area);
    let rows: Vec<Row> = app
        .operators
        .items
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let on = i == app.operators.sel;
            let row = Row::new(vec![
                Cell::from(if on { "▶" } else { " " }),
                Cell::from(safe(&o.account)),
                Cell::from(o.role.clone()),
                Cell::from(if o.domains.is_empty() {
                    "all".to_string()
                } else {
                    o.domains.join(", ")
                }),
                Cell::from(date(o.created_at)),
            ]);
            if on { row.style(th.selected()) } else { row }
        })
        .collect();
    let frame = whole_block(app, f, list, "Operators", &app.operators);
    scrolled(
        f,
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Fill(2),
                Constraint::Length(8),
                Constraint::Fill(3),
                Constraint::Length(10),
            ],
        )
        .header(Row::new(vec!["", "ACCOUNT", "ROLE", "DOMAINS", "SINCE"]).style(th.header()))
        .block(frame),
        list,
        app.operators.sel,
    );
    detail_pane(app, f, detail, &self::detail(app));
}

/// The selected operator: what its role may do.
pub fn detail(app: &App) -> Detail {
    let Some(o) = app.operators.items.get(app.operators.sel) else {
        if !app.operators.filter.value().is_empty() {
            return Detail::new("no operator matches").line(vec![text("Esc clears the filter.")]);
        }
        return Detail::new("no operator");
    };
    let mut d = Detail::new(format!("operator {}", safe(&o.account)))
        .line(vec![field("role", &o.role), field("may", can(&o.role))]);
    if o.account == app.actor.account {
        d = d.line(vec![text("this is you")]);
    }
    d
}
