//! Dashboard: what needs attention — sign-ups waiting for API access, tokens about to
//! expire, totals, recent changes. On an empty database: what to do first.

use super::super::app::App;
use super::super::fmt::{safe, span, thousands, trunc};
use super::super::ui::block;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

/// A row of a panel that takes the highlight: marked and styled when highlighted.
fn row(app: &App, on: bool, text: String) -> Line<'static> {
    if on {
        Line::styled(format!("▶{text}"), app.theme.selected())
    } else {
        Line::raw(format!(" {text}"))
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let Some(d) = &app.dash else {
        f.render_widget(Paragraph::new(Line::styled("  loading…", th.dim())), area);
        return;
    };
    if d.domains == 0 && app.domain.is_none() {
        let lines = vec![
            Line::raw(""),
            Line::styled(
                "  Welcome to Keyward. This database has no domain yet.",
                th.header(),
            ),
            Line::raw(""),
            Line::raw("  A domain is a tenant, named by the host your API is published on."),
            Line::raw(""),
            Line::from(vec![
                Span::styled("   n ", th.key()),
                Span::raw(" create a domain (e.g. free.example.com)"),
            ]),
            Line::from(vec![
                Span::styled("   L ", th.key()),
                Span::raw(" load demo data to look around (3 domains, users, keys, apps, tokens)"),
            ]),
            Line::raw(""),
            Line::raw("  Then 2 opens Users, where n creates a user; ? lists every key here."),
        ];
        f.render_widget(
            Paragraph::new(lines)
                .block(block(th, "Getting started".into(), true))
                .wrap(Wrap { trim: false }),
            area,
        );
        return;
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let [tl, tr] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [bl, br] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let inner = |r: Rect| r.width.saturating_sub(2) as usize;

    // Waiting for API access.
    let w = inner(tl);
    let mut lines: Vec<Line> = Vec::new();
    // Scrolled so that the highlighted sign-up is always in view.
    let rows = tl.height.saturating_sub(2).max(1) as usize;
    let first = (app.dash_sel + 1).saturating_sub(rows);
    let focused = app.dash_pane == 0;
    for (i, u) in d.pending_users.iter().enumerate().skip(first).take(rows) {
        let age = span(app.now - u.created_at);
        let role_w = 10;
        let email_w = w.saturating_sub(5 + 1 + role_w + 2);
        let text = format!(
            "{age:>4} {:<email_w$} {}",
            trunc(&safe(&u.email), email_w),
            trunc(&u.role, role_w)
        );
        lines.push(row(app, focused && i == app.dash_sel, text));
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            if d.users == 0 {
                " No users yet: 2 then n creates one."
            } else {
                " ✓ nobody is waiting"
            },
            th.dim(),
        ));
    }
    f.render_widget(
        Paragraph::new(lines).block(block(
            th,
            format!("Waiting for API access ({})", thousands(d.pending)),
            focused,
        )),
        tl,
    );

    // Expiring tokens (l focuses them; Enter opens the token on Tokens).
    let w = inner(tr);
    let mut lines: Vec<Line> = Vec::new();
    let focused = app.dash_pane == 1;
    let rows = tr.height.saturating_sub(2).max(1) as usize;
    let first = (app.dash_exp_sel + 1).saturating_sub(rows);
    for (i, t) in d.expiring.iter().enumerate().skip(first).take(rows) {
        let left = span(t.expires_at - app.now);
        let client_w = 10;
        let email_w = 12;
        let scopes_w = w.saturating_sub(6 + client_w + email_w + 3);
        let text = format!(
            "{left:>4} {:<client_w$} {:<email_w$} {}",
            trunc(&safe(&t.client_id), client_w),
            trunc(&safe(&t.user_email), email_w),
            trunc(&safe(&t.scopes), scopes_w)
        );
        lines.push(row(app, focused && i == app.dash_exp_sel, text));
    }
    if lines.is_empty() {
        lines.push(Line::styled(" ✓ no token expires within 7 days", th.dim()));
    }
    f.render_widget(
        Paragraph::new(lines).block(block(
            th,
            format!("Expiring within 7 days ({})", thousands(d.expiring_tokens)),
            focused,
        )),
        tr,
    );

    // Totals.
    let row = |a: &str, x: i64, b: &str, y: i64| {
        Line::raw(format!(
            " {a:<8}{:>9}  {b:<9}{:>7}",
            thousands(x),
            thousands(y)
        ))
    };
    let lines = vec![
        row("users", d.users, "keys", d.keys),
        row("pending", d.pending, "apps", d.apps),
        row("stations", d.stations, "domains", d.domains),
        row("tokens", d.active_tokens, "expiring", d.expiring_tokens),
        Line::styled(" tokens: active · expiring ≤ 7 days", th.dim()),
    ];
    f.render_widget(
        Paragraph::new(lines).block(block(th, "Totals".into(), false)),
        bl,
    );

    // Recent changes.
    let w = inner(br);
    let lines: Vec<Line> = d
        .recent
        .iter()
        .take(br.height.saturating_sub(2) as usize)
        .map(|e| {
            let t = super::super::fmt::datetime(e.at);
            let hm = t.get(11..16).unwrap_or("");
            let actor = trunc(&safe(&e.actor), 12);
            let rest = format!("{} {}", safe(&e.action), safe(&e.target));
            Line::raw(format!(
                "{hm} {actor:<12} {}",
                trunc(&rest, w.saturating_sub(19))
            ))
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(block(th, "Recent changes".into(), false)),
        br,
    );
}
