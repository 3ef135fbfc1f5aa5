//! Roles & scopes: two panes (h/l), with grant/revoke checklists and the default role.

use super::super::app::{App, detail_height};
use super::super::fmt::{safe, thousands};
use super::super::ui::{block, detail_pane, scrolled};
use super::super::widgets::detail::{Detail, field, text};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Cell, Row, Table};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let [panes, detail] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(detail_height(f.area().height)),
    ])
    .areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(panes);
    let sel_mark = |on: bool| if on { "▶" } else { " " };
    let rows: Vec<Row> = app
        .roles
        .items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let on = i == app.roles.sel;
            let row = Row::new(vec![
                Cell::from(sel_mark(on)),
                Cell::from(format!(
                    "{}{}",
                    safe(&r.name),
                    if r.default { " ★" } else { "" }
                )),
                Cell::from(thousands(r.users)),
                Cell::from(if r.all_scopes {
                    "(all)".to_string()
                } else {
                    names(&r.effective_scopes)
                }),
            ]);
            if on && app.pane == 0 {
                row.style(th.selected())
            } else {
                row
            }
        })
        .collect();
    scrolled(
        f,
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Length(15),
                Constraint::Length(7),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(vec!["", "ROLE", "USERS", "EFFECTIVE"]).style(th.header()))
        .block(block(
            th,
            format!("Roles ({}) · ★ default", app.roles.count()),
            app.pane == 0,
        )),
        left,
        app.roles.sel,
    );
    let rows: Vec<Row> = app
        .scopes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let on = i == app.scope_sel;
            let row = Row::new(vec![
                Cell::from(sel_mark(on)),
                Cell::from(safe(&s.name)),
                Cell::from(s.implies.join(" ")),
            ]);
            if on && app.pane == 1 {
                row.style(th.selected())
            } else {
                row
            }
        })
        .collect();
    scrolled(
        f,
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Fill(1),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(vec!["", "SCOPE", "IMPLIES"]).style(th.header()))
        .block(block(
            th,
            format!("Scopes ({})", app.scopes.len()),
            app.pane == 1,
        )),
        right,
        app.scope_sel,
    );
    detail_pane(app, f, detail, &self::detail(app));
}

/// The selected role or scope, whichever pane has the focus.
pub fn detail(app: &App) -> Detail {
    if app.pane == 0 {
        let Some(r) = app.roles.items.get(app.roles.sel) else {
            return Detail::new("no role");
        };
        let mut users = vec![field("users", thousands(r.users))];
        if r.default {
            users.push(text("default role of new sign-ups"));
        }
        if r.builtin {
            users.push(text("built in"));
        }
        return Detail::new(format!("role {}", safe(&r.name)))
            .line(vec![text(safe(&r.description))])
            .line(vec![
                field(
                    "granted",
                    if r.all_scopes {
                        "every scope".to_string()
                    } else {
                        names(&r.scopes)
                    },
                ),
                field("effective", names(&r.effective_scopes)),
            ])
            .line(users);
    }
    let Some(s) = app.scopes.get(app.scope_sel) else {
        return Detail::new("no scope");
    };
    let mut implies = vec![field(
        "implies",
        if s.implies.is_empty() {
            "nothing".to_string()
        } else {
            s.implies.join(" ")
        },
    )];
    if s.builtin {
        implies.push(text("built in"));
    }
    Detail::new(format!("scope {}", safe(&s.name)))
        .line(vec![text(safe(&s.description))])
        .line(implies)
}

/// Scope names, space-separated; a role without any says so.
fn names(scopes: &[String]) -> String {
    if scopes.is_empty() {
        "(none)".into()
    } else {
        scopes.join(" ")
    }
}
