//! A row's details, shown two ways: in the pane under its list (the fields of each
//! line joined with ` · `, cut at the pane's height, which then says so), and in full
//! in a pop-up (`Enter`): one field a row, labels in a column, values wrapped under
//! themselves, scrolled when taller than the terminal.

use super::super::theme::Theme;
use ratatui::text::{Line, Span};

/// One labelled value (an empty label: a sentence of its own). Values are already
/// inert (`fmt::safe`) where they came from users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub label: &'static str,
    pub value: String,
}

/// `label value`.
pub fn field(label: &'static str, value: impl Into<String>) -> Field {
    Field {
        label,
        value: value.into(),
    }
}

/// A sentence without a label.
pub fn text(value: impl Into<String>) -> Field {
    field("", value)
}

/// The details of the selected row (or what to do when there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    pub title: String,
    /// The pane's lines, each of one or more fields.
    pub lines: Vec<Vec<Field>>,
}

/// Values at most this wide stay on the row of their label in the pane.
const KEEP_TOGETHER: usize = 16;

/// Rows the pop-up keeps for its border, the blank row and its key hint.
pub const CHROME: u16 = 4;

impl Detail {
    pub fn new(title: impl Into<String>) -> Detail {
        Detail {
            title: title.into(),
            lines: Vec::new(),
        }
    }

    /// Adds a pane line of `fields`.
    pub fn line(mut self, fields: Vec<Field>) -> Detail {
        self.lines.push(fields);
        self
    }

    /// Whether there is anything to show beyond the title.
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(Vec::is_empty)
    }

    /// The pane's lines: `label value · label value`. A short value is bound to its
    /// label with a no-break space, so wrapping never leaves `password` at the end of
    /// one row and its `none` alone on the next.
    pub fn pane_lines(&self) -> Vec<Line<'static>> {
        self.lines
            .iter()
            .map(|fields| {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|f| {
                        // A label of several words never breaks either.
                        let l = f.label.replace(' ', "\u{a0}");
                        match f.label {
                            "" => f.value.clone(),
                            _ if unicode_width::UnicodeWidthStr::width(f.value.as_str())
                                <= KEEP_TOGETHER =>
                            {
                                format!("{l}\u{a0}{}", f.value)
                            }
                            _ => format!("{l} {}", f.value),
                        }
                    })
                    .collect();
                Line::raw(parts.join(" · "))
            })
            .collect()
    }

    /// Every field on rows of at most `width` columns: labels in a column (dimmed),
    /// values wrapped under themselves; a sentence takes the whole width.
    pub fn full_lines(&self, th: &Theme, width: usize) -> Vec<Line<'static>> {
        let label_w = self
            .lines
            .iter()
            .flatten()
            .map(|f| unicode_width::UnicodeWidthStr::width(f.label))
            .max()
            .unwrap_or(0);
        let value_w = width.saturating_sub(label_w + 2).max(12);
        let mut out = Vec::new();
        for f in self.lines.iter().flatten() {
            let value = if f.value.is_empty() { "—" } else { &f.value };
            if f.label.is_empty() {
                out.extend(
                    textwrap::wrap(value, width.max(12))
                        .into_iter()
                        .map(|c| Line::raw(c.into_owned())),
                );
                continue;
            }
            for (i, chunk) in textwrap::wrap(value, value_w).into_iter().enumerate() {
                let label = if i == 0 { f.label } else { "" };
                out.push(Line::from(vec![
                    Span::styled(format!("{label:<label_w$}  "), th.dim()),
                    Span::raw(chunk.into_owned()),
                ]));
            }
        }
        out
    }
}

/// The pop-up's size in a terminal of `cols` × `rows`: `(width, rows of text shown)`.
pub fn popup_size(cols: u16, rows: u16) -> (u16, u16) {
    let w = cols.saturating_sub(4).clamp(20, 100);
    (w, rows.saturating_sub(2 + CHROME).max(1))
}

/// The largest useful scroll offset for `lines` rows of text in `visible` rows.
pub fn max_scroll(lines: usize, visible: u16) -> usize {
    lines.saturating_sub(visible as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    fn sample() -> Detail {
        Detail::new("token 1").line(vec![
            field("user", "ana@example.com"),
            field("scope", "read write admin send_documents receive_documents"),
            text("Revoked by an operator."),
        ])
    }

    #[test]
    fn the_pane_joins_a_lines_fields() {
        // A short value is bound to its label with a no-break space (drawn as a plain
        // space); a long one may wrap after its label.
        assert_eq!(
            plain(&sample().pane_lines()),
            [
                "user ana@example.com · scope read write admin send_documents receive_documents · Revoked by an operator."
                    .replacen("user ", "user\u{a0}", 1)
            ]
        );
    }

    #[test]
    fn the_full_view_puts_one_field_a_row_with_values_wrapped_under_themselves() {
        let lines = plain(&sample().full_lines(&Theme::mono(), 30));
        assert_eq!(
            lines,
            [
                "user   ana@example.com",
                "scope  read write admin",
                "       send_documents",
                "       receive_documents",
                "Revoked by an operator.",
            ]
        );
        // Nothing is wider than asked, a long word included.
        let long = Detail::new("t").line(vec![field("jti", "x".repeat(70))]);
        let lines = plain(&long.full_lines(&Theme::mono(), 30));
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert!(lines[1].starts_with("     x"));
    }

    #[test]
    fn an_empty_value_shows_a_dash() {
        let d = Detail::new("t").line(vec![field("name", "")]);
        assert_eq!(plain(&d.full_lines(&Theme::mono(), 40)), ["name  —"]);
    }

    #[test]
    fn the_popup_fits_the_terminal() {
        assert_eq!(popup_size(80, 24), (76, 18));
        assert_eq!(popup_size(200, 50), (100, 44));
        assert_eq!(max_scroll(30, 18), 12);
        assert_eq!(max_scroll(5, 18), 0);
    }
}
