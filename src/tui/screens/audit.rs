//! Audit: every administrative change, newest first.

use super::super::app::App;
use super::super::fmt::{datetime, safe};
use super::super::ui::{ListView, list_screen};
use super::super::widgets::detail::{Detail, field};
use keyward::store::audit::AuditRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

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
    list_screen(
        app,
        f,
        area,
        ListView {
            title: "Audit",
            list: &app.audit,
            columns: &cols,
            cells: &cells,
            detail: detail(app),
            empty: "no events match",
        },
    );
}

/// The selected event, its details in full.
pub fn detail(app: &App) -> Detail {
    let Some(e) = app.audit.selected() else {
        return Detail::new("no event selected");
    };
    Detail::new(format!("event {} · {}", e.seq, safe(&e.action)))
        .line(vec![
            field("at", format!("{} UTC", datetime(e.at))),
            field("by", safe(&e.actor)),
            field("from", safe(&e.origin)),
        ])
        .line(vec![field("target", safe(&e.target))])
        .line(vec![field("details", safe(&e.details))])
        .line(vec![field("hash", &e.hash)])
}
