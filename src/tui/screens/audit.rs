//! Audit: every administrative change, newest first.

use super::super::app::App;
use super::super::fmt::{datetime, safe};
use super::super::ui::{ListView, list_screen};
use keyward::store::audit::AuditRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let cols = [
        ("#", Constraint::Length(6)),
        ("TIME (UTC)", Constraint::Length(16)),
        ("ACTOR", Constraint::Fill(2)),
        ("ACTION", Constraint::Length(16)),
        ("TARGET", Constraint::Fill(3)),
    ];
    let cells = |e: &AuditRow| {
        vec![
            e.seq.to_string(),
            datetime(e.at),
            safe(&e.actor),
            safe(&e.action),
            safe(&e.target),
        ]
    };
    let (title, detail) = match app.audit.selected() {
        Some(e) => (
            format!("event {} · {}", e.seq, safe(&e.action)),
            vec![
                Line::raw(format!(
                    "{} by {} from {}",
                    datetime(e.at),
                    safe(&e.actor),
                    safe(&e.origin)
                )),
                Line::raw(format!("target {}", safe(&e.target))),
                Line::raw(format!("details {}", safe(&e.details))),
            ],
        ),
        None => ("no event selected".into(), vec![]),
    };
    list_screen(
        app,
        f,
        area,
        ListView {
            title: "Audit",
            list: &app.audit,
            columns: &cols,
            cells: &cells,
            detail_title: title,
            detail,
            empty: "no events match",
        },
    );
}
