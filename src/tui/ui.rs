//! `render(&App, &mut Frame)`: a pure function of the state. The frame is the tab
//! bar, the screen, the hint line and the status bar; overlays draw on top.

use super::app::{App, Inspector, Overlay, Reveal, Small, detail_height};
use super::fmt::{safe, thousands, trunc};
use super::keymap;
use super::screens::{self, SCREENS, ScreenId};
use super::theme::Theme;
use super::widgets::detail::{self, Detail};
use super::widgets::form::{FieldKind, Form};
use super::widgets::input;
use super::widgets::list::{ListRow, Paged};
use super::widgets::palette::COMMANDS;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap,
};
use unicode_width::UnicodeWidthStr;

pub const MIN_W: u16 = 80;
pub const MIN_H: u16 = 24;
const SPIN: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

pub fn render(app: &App, f: &mut Frame) {
    let area = f.area();
    let th = app.theme;
    if area.width < MIN_W || area.height < MIN_H {
        too_small(f, area, &th);
        return;
    }
    let [tabs, body, hint, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    tab_bar(app, f, tabs);
    match app.screen {
        ScreenId::Dashboard => screens::dashboard::render(app, f, body),
        ScreenId::Users => screens::users::render(app, f, body),
        ScreenId::Roles => screens::roles::render(app, f, body),
        ScreenId::Stations => screens::stations::render(app, f, body),
        ScreenId::Tokens => screens::tokens::render(app, f, body),
        ScreenId::Operators => screens::operators::render(app, f, body),
        ScreenId::Keys => screens::keys::render(app, f, body),
        ScreenId::Apps => screens::apps::render(app, f, body),
        ScreenId::SigningKeys => screens::signing::render(app, f, body),
        ScreenId::Audit => screens::audit::render(app, f, body),
    }
    match &app.toast {
        // A result longer than a row takes the status bar's row too (two rows).
        Some(t) => toast(app, &t.text, f, Rect::new(hint.x, hint.y, hint.width, 2)),
        None => {
            hint_line(app, f, hint);
            status_bar(app, f, status);
        }
    }
    if let Some(ov) = &app.overlay {
        overlay(app, ov, f, area);
    }
}

fn too_small(f: &mut Frame, area: Rect, th: &Theme) {
    let msg = vec![
        Line::styled("Keyward", th.title()),
        Line::raw(format!("This terminal is {}×{}.", area.width, area.height)),
        Line::raw(format!("Please enlarge it to at least {MIN_W}×{MIN_H}.")),
        Line::styled("Keys wait until it is; q or Ctrl-C quits", th.dim()),
    ];
    let h = (msg.len() as u16).min(area.height);
    let y = area.y + area.height.saturating_sub(h) / 2;
    f.render_widget(
        Paragraph::new(msg)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        Rect::new(area.x, y, area.width, h),
    );
}

pub fn spinner(app: &App) -> &'static str {
    SPIN[(app.tick as usize) % SPIN.len()]
}

fn tab_bar(app: &App, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let narrow = area.width < 110;
    let mut spans = vec![];
    if !narrow {
        spans.push(Span::styled(" Keyward ", th.title()));
    }
    if area.width >= 110 {
        let d = app
            .domain
            .as_ref()
            .map_or("all domains".to_string(), |d| d.name.clone());
        spans.push(Span::raw(format!("· {d} ▾ ")));
    }
    if !narrow {
        spans.push(Span::styled("│", th.dim()));
    }
    for (i, d) in SCREENS.iter().enumerate() {
        if !narrow || i > 0 {
            spans.push(Span::raw(" "));
        }
        let label = format!("{} {}", d.key, if narrow { d.short } else { d.tab });
        if d.id == app.screen {
            spans.push(Span::styled(format!("[{label}]"), th.tab_active()));
        } else {
            spans.push(Span::raw(label));
        }
    }
    if app.busy() {
        spans.push(Span::raw(format!("  ⟳{}", spinner(app))));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A result or notice over the hint line, wrapped onto the status bar's row when it
/// is longer than one; cut with `…` past two rows.
fn toast(app: &App, text: &str, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let w = (area.width as usize).saturating_sub(4).max(10);
    let text = safe(text);
    let mut rows: Vec<String> = textwrap::wrap(&text, w)
        .into_iter()
        .map(|r| r.into_owned())
        .collect();
    if rows.len() > 2 {
        let rest = rows[1..].join(" ");
        rows.truncate(2);
        rows[1] = trunc(&rest, w);
    }
    let first = Line::from(vec![
        Span::styled(" » ", th.key()),
        Span::raw(rows.first().cloned().unwrap_or_default()),
    ]);
    let below = Rect {
        y: area.y + 1,
        height: 1,
        ..area
    };
    f.render_widget(Paragraph::new(first), Rect { height: 1, ..area });
    match rows.get(1) {
        Some(r) => f.render_widget(Paragraph::new(format!("   {r}")), below),
        // One row: the status bar stays.
        None => status_bar(app, f, below),
    }
}

fn hint_line(app: &App, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let mut spans = vec![Span::raw(" ")];
    for b in keymap::hints(app.screen) {
        let off = app.disabled(b.need, b.unavailable).is_some();
        let (ks, ds) = if off {
            (th.dim(), th.dim())
        } else {
            (th.key(), Style::new())
        };
        spans.push(Span::styled(b.label, ks));
        spans.push(Span::styled(format!(" {}", b.desc), ds));
        spans.push(Span::styled(" · ", th.dim()));
    }
    spans.pop();
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn status_bar(app: &App, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let domain = app
        .domain
        .as_ref()
        .map_or("all domains".to_string(), |d| d.name.clone());
    let right = " ?help :cmd q quit ";
    let left = format!(
        " {} {} · {} · {}",
        app.actor.label(),
        app.actor.role,
        domain,
        app.info.database
    );
    let room = (area.width as usize).saturating_sub(right.chars().count() + 1);
    let left = trunc(&left, room);
    let pad = room.saturating_sub(left.chars().count());
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(left, th.header()),
            Span::raw(" ".repeat(pad + 1)),
            Span::styled(right, th.key()),
        ])),
        area,
    );
}

/// Draws a whole (unpaged) list, scrolled so that its highlighted row `sel` is in view:
/// Apps, Signing keys, Operators, Roles & scopes hold every row, and more than fit.
pub fn scrolled(f: &mut Frame, table: Table, area: Rect, sel: usize) {
    let mut state = TableState::default().with_selected(Some(sel));
    f.render_stateful_widget(table, area, &mut state);
}

/// A whole list's block (see [`Small`]): its title and count (`3 of 22` while a filter
/// narrows it) and the filter, with the terminal's cursor in it while it is typed.
pub fn whole_block<'a, T>(
    app: &App,
    f: &mut Frame,
    area: Rect,
    title: &str,
    list: &Small<T>,
) -> Block<'a> {
    let th = &app.theme;
    let head = format!("{title} ({})", list.count());
    let ftext = safe(list.filter.value());
    if !list.editing && ftext.is_empty() {
        return block(th, head, true);
    }
    let prefix = format!("{head} · /");
    // Inside the corner, the spaces around the title and the border's last column.
    let room = (area.width as usize)
        .saturating_sub(prefix.width() + 5)
        .max(1);
    let shown = if list.editing {
        let v = input::view(&list.filter, (ftext.width() + 1).min(room), true);
        f.set_cursor_position((area.x + 2 + (prefix.width() + v.cursor) as u16, area.y));
        v.text
    } else {
        trunc(&ftext, room)
    };
    block(th, format!("{prefix}{shown}"), true)
}

/// A bordered block with a title.
pub fn block<'a>(th: &Theme, title: String, focus: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Plain)
        .border_style(if focus {
            th.focus_border()
        } else {
            th.border()
        })
        .title(Span::styled(format!(" {title} "), th.title()))
}

/// One paged list screen: title line with filter and counts, the table, a detail pane.
pub struct ListView<'a, R> {
    pub title: &'a str,
    pub list: &'a Paged<R>,
    pub columns: &'a [(&'a str, Constraint)],
    pub cells: &'a dyn Fn(&R) -> Vec<String>,
    pub detail: Detail,
    pub empty: &'a str,
}

pub fn list_screen<R: ListRow>(app: &App, f: &mut Frame, area: Rect, v: ListView<'_, R>) {
    let th = &app.theme;
    let dh = detail_height(f.area().height);
    let [title, table, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(2),
        Constraint::Length(dh),
    ])
    .areas(area);
    // Title line.
    let l = v.list;
    let domain = app
        .domain
        .as_ref()
        .map_or("all domains".to_string(), |d| d.name.clone());
    let mut left = vec![Span::styled(format!(" {} · {domain}", v.title), th.title())];
    let counts = match l.total {
        Some(t) if l.rows.is_empty() => format!("0 of {}", thousands(t)),
        Some(t) => format!("{} of {}", thousands(l.sel + 1), thousands(t)),
        None if !l.rows.is_empty() => format!("{} of …", thousands(l.sel + 1)),
        None => String::new(),
    };
    let sorts = app.screen.def().sorts;
    let sort = format!(
        "{} {}",
        sorts.get(l.sort).copied().unwrap_or(""),
        if l.desc { "▼" } else { "▲" }
    );
    let spin = if l.loading() || app.writing > 0 {
        format!(" ⟳{}", spinner(app))
    } else {
        "   ".into()
    };
    let right = format!("sort {sort}  {counts}{spin} ");
    // The filter: on one line between the title and the sort, scrolled when longer.
    let ftext = safe(l.filter.value());
    if l.editing || !ftext.is_empty() {
        let head = left[0].width() + 4;
        let room = (title.width as usize).saturating_sub(head + right.width());
        // Within the room left: a long filter scrolls, it never runs into the sort.
        let w = (ftext.width() + usize::from(l.editing)).min(room).max(1);
        let shown = if l.editing {
            let v = input::view(&l.filter, w, true);
            f.set_cursor_position((title.x + (head + v.cursor) as u16, title.y));
            v.text
        } else {
            trunc(&ftext, w)
        };
        left.push(Span::raw("   "));
        left.push(Span::styled(format!("/{shown}"), th.key()));
    }
    let used: usize = left.iter().map(Span::width).sum();
    let pad = (title.width as usize).saturating_sub(used + right.width());
    left.push(Span::raw(" ".repeat(pad)));
    left.push(Span::raw(right));
    f.render_widget(Paragraph::new(Line::from(left)), title);
    // Table.
    let visible = table.height.saturating_sub(1) as usize;
    let header = Row::new(
        std::iter::once(Cell::from(" "))
            .chain(v.columns.iter().map(|(h, _)| Cell::from(*h)))
            .collect::<Vec<_>>(),
    )
    .style(th.header());
    let mut widths = vec![Constraint::Length(1)];
    widths.extend(v.columns.iter().map(|(_, c)| *c));
    // The columns as the table will lay them out, so that a value cut to fit ends in
    // `…` instead of looking whole (`Administr`, `ines.schmidt10` for `…105@…`).
    let cols: Vec<usize> = Layout::horizontal(widths.clone())
        .flex(Flex::Start)
        .spacing(1)
        .split(Rect::new(0, 0, table.width, 1))
        .iter()
        .map(|c| c.width as usize)
        .collect();
    let rows: Vec<Row> = l
        .visible(visible)
        .map(|(i, r)| {
            let selected = i == l.sel;
            let mut cells = vec![Cell::from(if selected { "▶" } else { " " })];
            cells.extend(
                (v.cells)(r)
                    .into_iter()
                    .zip(cols.iter().skip(1))
                    .map(|(c, w)| Cell::from(fit(&c, *w))),
            );
            let row = Row::new(cells);
            if selected {
                row.style(th.selected())
            } else {
                row
            }
        })
        .collect();
    if rows.is_empty() {
        let msg = if l.loaded { v.empty } else { "loading…" };
        f.render_widget(
            Table::new(Vec::<Row>::new(), widths.clone()).header(header),
            table,
        );
        if table.height > 2 {
            f.render_widget(
                Paragraph::new(Line::styled(format!("  {msg}"), th.dim())),
                Rect::new(table.x, table.y + 2, table.width, 1),
            );
        }
    } else {
        f.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            table,
        );
    }
    detail_pane(app, f, detail, &v.detail);
}

/// `s` in `w` display columns, ending in `…` when it is cut.
pub fn fit(s: &str, w: usize) -> String {
    if s.width() <= w {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        out.push(c);
        used += cw;
    }
    if w > 0 {
        out.push('…');
    }
    out
}

/// The pane under a list: the selected row's details, as many lines as fit; when they
/// do not all fit, its bottom border says `Enter` shows them all.
pub fn detail_pane(app: &App, f: &mut Frame, area: Rect, d: &Detail) {
    let th = &app.theme;
    let p = Paragraph::new(d.pane_lines()).wrap(Wrap { trim: false });
    let mut b = block(th, d.title.clone(), false);
    if p.line_count(area.width.saturating_sub(2)) > area.height.saturating_sub(2) as usize {
        b = b.title_bottom(Line::styled(" … Enter shows all ", th.key()).right_aligned());
    }
    f.render_widget(p.block(b), area);
    // The no-break spaces that kept labels with their values while wrapping go out as
    // plain spaces: what the terminal shows, and what a mouse copies, is ordinary text.
    let buf = f.buffer_mut();
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            if let Some(c) = buf.cell_mut((x, y))
                && c.symbol() == "\u{a0}"
            {
                c.set_symbol(" ");
            }
        }
    }
}

/// Draws a bordered pop-up `w` columns wide (at most the area's), centred, as tall as
/// its paragraph once wrapped (counting lines would cut off the last rows, the keys to
/// press, whenever a line wraps); returns where it went.
fn popup(f: &mut Frame, area: Rect, w: u16, p: Paragraph) -> Rect {
    let w = w.min(area.width.saturating_sub(2));
    let h = p.line_count(w.saturating_sub(2)) as u16;
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    f.render_widget(p, r);
    r
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width.saturating_sub(2));
    let h = h.min(area.height.saturating_sub(2));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn overlay(app: &App, ov: &Overlay, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    match ov {
        Overlay::Help => {
            // Two columns of bindings; reasons for disabled keys grouped below.
            let mut cells: Vec<Line> = Vec::new();
            let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
            for b in keymap::for_screen(app.screen) {
                let why = app.disabled(b.need, b.unavailable);
                let off = why.is_some();
                cells.push(Line::from(vec![
                    Span::styled(
                        format!("{:>6} ", b.label),
                        if off { th.dim() } else { th.key() },
                    ),
                    Span::styled(
                        format!("{}{}", b.desc, if off { " ⊘" } else { "" }),
                        if off { th.dim() } else { Style::new() },
                    ),
                ]));
                if let Some(w) = why {
                    match reasons.iter_mut().find(|(r, _)| *r == w) {
                        Some((_, keys)) => keys.push(b.label),
                        None => reasons.push((w, vec![b.label])),
                    }
                }
            }
            let half = cells.len().div_ceil(2);
            let right: Vec<Line> = cells.split_off(half);
            let mut foot: Vec<Line> = reasons
                .into_iter()
                .map(|(why, keys)| {
                    Line::styled(format!("⊘ {} disabled: {why}", keys.join(" ")), th.dim())
                })
                .collect();
            foot.push(Line::styled("any key closes", th.dim()));
            let h = (half as u16 + foot.len() as u16 * 2 + 3).min(area.height);
            let r = centered(area, 100, h);
            f.render_widget(Clear, r);
            let outer = block(th, format!("Keys of {}", app.screen.def().title), true);
            let inner = outer.inner(r);
            f.render_widget(outer, r);
            let [cols, foot_area] =
                Layout::vertical([Constraint::Length(half as u16), Constraint::Min(1)])
                    .areas(inner);
            let [lc, rc] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(cols);
            f.render_widget(Paragraph::new(cells), lc);
            f.render_widget(Paragraph::new(right), rc);
            f.render_widget(Paragraph::new(foot).wrap(Wrap { trim: false }), foot_area);
        }
        Overlay::Detail { scroll } => {
            let Some(d) = screens::detail(app) else {
                return;
            };
            let (w, visible) = detail::popup_size(area.width, area.height);
            let all = d.full_lines(th, w.saturating_sub(2) as usize);
            let top = (*scroll).min(detail::max_scroll(all.len(), visible));
            let mut lines: Vec<Line> = all
                .iter()
                .skip(top)
                .take(visible as usize)
                .cloned()
                .collect();
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::styled("↑↓", th.key()),
                Span::raw(" scroll · "),
                Span::styled("Esc", th.key()),
                Span::raw(" close · the screen's keys act on this row"),
            ]));
            let mut b = block(th, d.title, true);
            if all.len() > visible as usize {
                let last = (top + visible as usize).min(all.len());
                b = b.title_bottom(
                    Line::styled(format!(" {}–{last} of {} ", top + 1, all.len()), th.dim())
                        .right_aligned(),
                );
            }
            popup(
                f,
                area,
                w,
                Paragraph::new(lines).block(b).wrap(Wrap { trim: false }),
            );
        }
        Overlay::Notice(msg) => {
            let mut lines: Vec<Line> = msg.lines().map(|l| Line::raw(safe(l))).collect();
            lines.push(Line::raw(""));
            lines.push(Line::styled("any key closes", th.dim()));
            popup(
                f,
                area,
                76,
                Paragraph::new(lines)
                    .block(block(th, "Result".into(), true))
                    .wrap(Wrap { trim: false }),
            );
        }
        Overlay::Error(msg) => {
            let lines = vec![
                Line::styled("✗ That did not work", th.bad()),
                Line::raw(""),
                Line::raw(safe(msg)),
                Line::raw(""),
                Line::styled("any key closes", th.dim()),
            ];
            popup(
                f,
                area,
                70,
                Paragraph::new(lines)
                    .block(block(th, "Error".into(), true))
                    .wrap(Wrap { trim: false }),
            );
        }
        Overlay::Confirm(c) => {
            let mut lines: Vec<Line> = c.lines.iter().map(|l| Line::raw(l.clone())).collect();
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::styled("y", th.key()),
                Span::raw(" confirm · "),
                Span::styled("n", th.key()),
                Span::raw("/Esc cancel"),
            ]));
            popup(
                f,
                area,
                74,
                Paragraph::new(lines)
                    .block(block(th, c.title.clone(), true))
                    .wrap(Wrap { trim: false }),
            );
        }
        Overlay::DomainPicker { sel } => {
            let mut items = vec!["all domains".to_string()];
            items.extend(app.domains.iter().map(|d| d.name.clone()));
            let lines: Vec<Line> = items
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if i == *sel {
                        Line::styled(format!("▶ {n}"), th.selected())
                    } else {
                        Line::raw(format!("  {n}"))
                    }
                })
                .collect();
            let r = centered(area, 50, (lines.len() as u16 + 3).min(20));
            f.render_widget(Clear, r);
            let skip = (*sel as i64 - (r.height as i64 - 4)).max(0) as usize;
            f.render_widget(
                Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>()).block(block(
                    th,
                    "Domain filter · Enter pick · x remove · Esc".into(),
                    true,
                )),
                r,
            );
        }
        Overlay::Settings { rows, sel } => {
            let mut lines = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                let text = format!("{:<24} {}", r.key, safe(&r.value));
                lines.push(if i == *sel {
                    Line::styled(format!("▶ {text}"), th.selected())
                } else {
                    Line::raw(format!("  {text}"))
                });
            }
            if let Some(r) = rows.get(*sel) {
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    keyward::service::settings::describe(&r.key),
                    th.dim(),
                ));
            }
            popup(
                f,
                area,
                76,
                Paragraph::new(lines)
                    .block(block(th, "Settings · Enter edit · Esc".into(), true))
                    .wrap(Wrap { trim: false }),
            );
        }
        Overlay::Palette(p) => {
            let matches = p.matches();
            let w = area.width.saturating_sub(4).min(76);
            let v = input::view(&p.input, w.saturating_sub(3) as usize, true);
            let mut lines = vec![Line::from(vec![
                Span::styled(":", th.key()),
                Span::raw(v.text),
            ])];
            let name_w = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for (i, c) in matches.iter().take(12).enumerate() {
                let text = format!("{:<name_w$} {:<8} {}", c.name, c.arg, c.desc);
                lines.push(if i == p.sel {
                    Line::styled(format!("▶ {text}"), th.selected())
                } else {
                    Line::raw(format!("  {text}"))
                });
            }
            if matches.is_empty() {
                lines.push(Line::styled(
                    format!("  no match among {} commands", COMMANDS.len()),
                    th.dim(),
                ));
            }
            let r = Rect::new(area.x + 2, area.y + 1, w, lines.len() as u16 + 2);
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(lines).block(block(th, "Command · Enter run · Esc".into(), true)),
                r,
            );
            f.set_cursor_position((r.x + 2 + v.cursor as u16, r.y + 1));
        }
        Overlay::Form { form, .. } => form_popup(th, form, f, area),
        Overlay::Reveal(rv) => reveal_popup(th, rv, f, area),
        Overlay::Inspect(ins) => inspector_popup(app, ins, f, area),
    }
}

fn form_popup(th: &Theme, form: &Form, f: &mut Frame, area: Rect) {
    const WIDTH: u16 = 78;
    let label_w = form.fields.iter().map(|x| x.label.len()).max().unwrap_or(5) + 2;
    // A text field takes one row: as wide as its value (24 columns at least), at most
    // what is left of the row after its label and brackets, scrolled beyond that.
    let inner = WIDTH.min(area.width.saturating_sub(2)).saturating_sub(2) as usize;
    let room = inner.saturating_sub(2 + label_w + 2).max(1);
    let mut lines = Vec::new();
    let mut cursor = None;
    if let Some(i) = &form.intro {
        lines.push(Line::styled(i.clone(), th.dim()));
    }
    for (i, fld) in form.fields.iter().enumerate() {
        let focus = i == form.focus;
        let mark = if focus { "▶ " } else { "  " };
        let mut spans = vec![Span::styled(
            format!("{mark}{:<label_w$}", fld.label),
            if focus { th.key() } else { th.header() },
        )];
        match &fld.kind {
            FieldKind::Text(input) => {
                let wide = safe(input.value()).width() + usize::from(focus);
                let v = input::view(input, wide.max(24).min(room), focus);
                spans.push(Span::styled(
                    format!("[{}]", v.text),
                    if focus { th.selected() } else { Style::new() },
                ));
                if focus {
                    cursor = Some((lines.len(), 2 + label_w + 1 + v.cursor));
                }
            }
            FieldKind::Choice { options, sel } => {
                let items = options.iter().enumerate().map(|(j, o)| {
                    let s = format!("({}) {} ", if j == *sel { "•" } else { " " }, safe(o));
                    if j == *sel && focus {
                        Span::styled(s, th.selected())
                    } else {
                        Span::raw(s)
                    }
                });
                spans = flow(spans, items, 2 + label_w, inner, &mut lines);
            }
            FieldKind::Checks { options, cursor: c } => {
                if options.is_empty() {
                    spans.push(Span::styled("(none)", th.dim()));
                }
                let items = options.iter().enumerate().map(|(j, (o, on))| {
                    let s = format!("[{}] {} ", if *on { "x" } else { " " }, safe(o));
                    if j == *c && focus {
                        Span::styled(s, th.selected())
                    } else {
                        Span::raw(s)
                    }
                });
                spans = flow(spans, items, 2 + label_w, inner, &mut lines);
            }
        }
        // A note that does not fit after the value goes under it, wrapped under
        // itself. An error that says what the note says takes its place.
        let mut note_rows = Vec::new();
        if let Some(n) = fld.note.as_ref().filter(|n| fld.error.as_ref() != Some(n)) {
            let used: usize = spans.iter().map(|s| s.content.width()).sum();
            if used + 1 + n.width() <= inner {
                spans.push(Span::styled(format!(" {n}"), th.dim()));
            } else {
                note_rows = hanging(n, 2 + label_w + 1, inner, "", th.dim());
            }
        }
        lines.push(Line::from(spans));
        lines.extend(note_rows);
        if let Some(e) = &fld.error {
            lines.extend(hanging(&safe(e), 4, inner, "✗ ", th.bad()));
        }
    }
    if let Some(why) = &form.failed {
        lines.push(Line::raw(""));
        lines.extend(hanging(
            &format!("Not saved: {}", safe(why)),
            0,
            inner,
            "✗ ",
            th.bad(),
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Tab/↑↓ field · ←/→ choose · space tick · Enter save · Esc cancel",
        th.dim(),
    ));
    // The cursor's row counts the rows its lines above take once wrapped.
    let cursor = cursor.map(|(row, col)| {
        let above =
            Paragraph::new(lines[..row.min(lines.len())].to_vec()).wrap(Wrap { trim: false });
        (above, col)
    });
    let r = popup(
        f,
        area,
        WIDTH,
        Paragraph::new(lines)
            .block(block(th, form.title.clone(), true))
            .wrap(Wrap { trim: false }),
    );
    if let Some((above, col)) = cursor {
        let row = above.line_count(r.width.saturating_sub(2)) as u16;
        let x = (r.x + 1 + col as u16).min(r.x + r.width.saturating_sub(2));
        f.set_cursor_position((x, r.y + 1 + row));
    }
}

/// Lays `items` (a choice's options, a checklist's boxes) out after `first` (the
/// label) in rows of `width` columns, breaking between items, never inside one, so a
/// box stays with its name; further rows start `indent` columns in. Full rows go to
/// `lines`; the last, still open (a note may follow it), is returned.
fn flow<'a>(
    first: Vec<Span<'a>>,
    items: impl Iterator<Item = Span<'a>>,
    indent: usize,
    width: usize,
    lines: &mut Vec<Line<'a>>,
) -> Vec<Span<'a>> {
    let mut row = first;
    let mut used: usize = row.iter().map(|s| s.content.width()).sum();
    for item in items {
        let w = item.content.trim_end().width();
        if used + w > width && used > indent {
            lines.push(Line::from(std::mem::take(&mut row)));
            row.push(Span::raw(" ".repeat(indent)));
            used = indent;
        }
        used += item.content.width();
        row.push(item);
    }
    row
}

/// `text` wrapped to `width` columns, every row `indent` columns in, the first after
/// `mark` and the others under its text.
fn hanging(
    text: &str,
    indent: usize,
    width: usize,
    mark: &str,
    style: Style,
) -> Vec<Line<'static>> {
    let pad = " ".repeat(indent);
    let first = format!("{pad}{mark}");
    let rest = " ".repeat(indent + mark.width());
    let opts = textwrap::Options::new(width.max(indent + mark.width() + 12))
        .initial_indent(&first)
        .subsequent_indent(&rest);
    textwrap::wrap(text, opts)
        .into_iter()
        .map(|l| Line::styled(l.into_owned(), style))
        .collect()
}

/// The once-only secret: the full value, wrapped, with how to keep it.
fn reveal_popup(th: &Theme, rv: &Reveal, f: &mut Frame, area: Rect) {
    let w = 76u16.min(area.width.saturating_sub(2));
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let mut lines = vec![
        Line::styled(
            "Shown only now. Store it before closing: it will not be shown again.",
            th.warn(),
        ),
        Line::raw(""),
    ];
    if let Some(id) = &rv.client_id {
        lines.push(Line::from(vec![
            Span::styled("client_id      ", th.dim()),
            Span::raw(safe(id)),
        ]));
    }
    let label = if rv.client_id.is_some() {
        "client_secret"
    } else {
        "access_token"
    };
    lines.push(Line::styled(label, th.dim()));
    // Hard-wrapped by characters so a token keeps every character on screen.
    let chars: Vec<char> = rv.secret.expose().chars().collect();
    for chunk in chars.chunks(inner_w) {
        lines.push(Line::styled(chunk.iter().collect::<String>(), th.ok()));
    }
    lines.push(Line::raw(""));
    // Wrapped: a role with many scopes must not push the expiry out of view.
    let about = format!("scope {} · {}", safe(&rv.scope), rv.expiry);
    for row in textwrap::wrap(&about, inner_w) {
        lines.push(Line::raw(row.into_owned()));
    }
    lines.push(Line::from(vec![
        Span::styled("c", th.key()),
        Span::raw(if rv.copied {
            " copied (OSC 52; tmux/screen may keep a copy) · "
        } else {
            " copy secret (OSC 52; tmux/screen may keep a copy) · "
        }),
        Span::styled("Enter", th.key()),
        Span::raw(" done"),
    ]));
    let title = if let Some(t) = &rv.title {
        safe(t)
    } else if rv.client_id.is_some() {
        format!("API key for {}", safe(&rv.email))
    } else {
        format!("Token for {}", safe(&rv.email))
    };
    let r = centered(area, w, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block(th, title, true)), r);
}

/// `in 3h` / `3h ago`.
fn relative(now: i64, ts: i64) -> String {
    if ts >= now {
        format!("in {}", super::fmt::span(ts - now))
    } else {
        format!("{} ago", super::fmt::span(now - ts))
    }
}

/// The token inspector: verdict, header and claims of a pasted token.
fn inspector_popup(app: &App, ins: &Inspector, f: &mut Frame, area: Rect) {
    let th = &app.theme;
    let r = Rect::new(
        area.x + 1,
        area.y + 1,
        area.width.saturating_sub(2),
        area.height.saturating_sub(3),
    );
    let inner_w = r.width.saturating_sub(2) as usize;
    let label = |s: &'static str| Span::styled(format!("{s:<9}"), th.dim());
    let value = ins.input.value();
    let shown = if value.is_empty() && ins.editing {
        "paste a token (Ctrl-Shift-V / middle click), Enter inspects".to_string()
    } else {
        trunc(&safe(value), inner_w.saturating_sub(10))
    };
    let mut lines = vec![Line::from(vec![
        label("Token"),
        Span::styled(
            format!("{shown}{}", if ins.editing { "▏" } else { "" }),
            if value.is_empty() {
                th.dim()
            } else {
                Style::new()
            },
        ),
    ])];
    lines.push(Line::raw(""));
    match &ins.result {
        None if ins.asked.is_some() => lines.push(Line::styled("inspecting…", th.dim())),
        None => {}
        Some(Err(e)) => lines.push(Line::from(vec![
            label("Verdict"),
            Span::styled(format!("✗ {}", safe(e)), th.bad()),
        ])),
        Some(Ok(i)) => {
            let mut verdict = vec![label("Verdict")];
            if i.active {
                verdict.push(Span::styled("✓ ACTIVE", th.ok()));
            } else {
                verdict.push(Span::styled("✗ INACTIVE", th.bad()));
                if let Some(reason) = i.reason {
                    verdict.push(Span::raw(format!(
                        " — {}",
                        reason.as_str().replace('_', " ")
                    )));
                }
                if let Some(rec) = &i.record
                    && let Some(at) = rec.revoked_at
                {
                    verdict.push(Span::raw(format!(
                        " {} by {}",
                        super::fmt::datetime(at),
                        safe(rec.revoked_by.as_deref().unwrap_or("?"))
                    )));
                }
            }
            lines.push(Line::from(verdict));
            if let Some(why) = i.record.as_ref().and_then(|r| r.revoke_reason.as_ref()) {
                lines.push(Line::from(vec![
                    label(""),
                    Span::raw(format!("reason {:?}", safe(why))),
                ]));
            } else if let Some(reason) = i.reason.filter(|_| !i.active) {
                // What the verdict means, for the reasons that are not a revocation.
                lines.push(Line::from(vec![
                    label(""),
                    Span::styled(trunc(reason.explain(), inner_w.saturating_sub(9)), th.dim()),
                ]));
            }
            let h = |k: &str| {
                i.header
                    .as_ref()
                    .and_then(|h| h.get(k))
                    .and_then(|v| v.as_str())
                    .map_or("-".to_string(), safe)
            };
            lines.extend(i.header.is_some().then(|| {
                Line::from(vec![
                    label("Header"),
                    Span::raw(format!(
                        "alg {} · typ {} · kid {}",
                        h("alg"),
                        h("typ"),
                        trunc(&h("kid"), 13)
                    )),
                ])
            }));
            let c = |k: &str| {
                i.claims.as_ref().and_then(|c| c.get(k)).map(|v| match v {
                    serde_json::Value::String(s) => safe(s),
                    other => safe(&other.to_string()),
                })
            };
            let t = |k: &str| {
                i.claims
                    .as_ref()
                    .and_then(|c| c.get(k))
                    .and_then(|v| v.as_i64())
                    .map(|ts| {
                        format!(
                            "{} UTC ({})",
                            super::fmt::datetime(ts),
                            relative(app.now, ts)
                        )
                    })
            };
            let mut first = true;
            // `sub` is the user's id: the address it stands for first, as people know it.
            let sub = c("sub").map(|s| match &i.username {
                Some(email) if *email != s => format!("{} ({s})", safe(email)),
                _ => s,
            });
            for (name, v, hint) in [
                ("sub", sub, "  → u"),
                ("aud", c("aud"), ""),
                ("scope", c("scope"), ""),
                ("client_id", c("client_id"), "  → k"),
                ("jti", c("jti"), ""),
                ("iat", t("iat"), ""),
                ("exp", t("exp"), ""),
            ] {
                let Some(v) = v else { continue };
                lines.push(Line::from(vec![
                    label(if first { "Claims" } else { "" }),
                    Span::styled(format!("{name:<10}"), th.dim()),
                    Span::raw(trunc(&v, inner_w.saturating_sub(25))),
                    Span::styled(hint, th.key()),
                ]));
                first = false;
            }
        }
    }
    lines.push(Line::raw(""));
    // Only the keys that act on this answer (a malformed token has no record, user or
    // client to act on).
    let keys = if ins.editing {
        "Enter inspect · Esc back".to_string()
    } else {
        let mut k = Vec::new();
        if ins.revocable().is_some() {
            k.push("r revoke");
        }
        if ins.user().is_some() {
            k.push("u open user");
        }
        if ins.client().is_some() {
            k.push("k open key");
        }
        k.extend(["e new token", "Esc back"]);
        k.join(" · ")
    };
    lines.push(Line::styled(keys, th.dim()));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(block(th, "Inspect token".into(), true))
            .wrap(Wrap { trim: false }),
        r,
    );
}
