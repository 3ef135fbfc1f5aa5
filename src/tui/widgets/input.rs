//! A text input as the console shows it on one row: its characters rendered inert (see
//! [`keyward::text::inert`]) and scrolled sideways so the cursor stays in view, a `…`
//! in the first column when the start is scrolled out. A long value never wraps onto
//! the rows below, and the terminal's cursor sits where the next character goes.

use keyward::text::inert;
use tui_input::Input;
use unicode_width::UnicodeWidthStr;

/// What fits of an input in `width` columns.
#[derive(Debug, PartialEq, Eq)]
pub struct View {
    /// The visible text, padded with spaces to the width.
    pub text: String,
    /// The cursor's column within `text`.
    pub cursor: usize,
}

/// The part of `input` to show in `width` columns (at least one). Focused, it keeps
/// the cursor on a column of its own (the last one at most, after a value that fills
/// the width); not focused, it shows the start, a `…` in the last column when cut.
pub fn view(input: &Input, width: usize, focused: bool) -> View {
    let width = width.max(1);
    // Each character as shown (a control character escaped to several columns).
    let units: Vec<(String, usize)> = input
        .value()
        .chars()
        .map(|c| {
            let shown = inert(c.encode_utf8(&mut [0; 4])).into_owned();
            let w = shown.width();
            (shown, w)
        })
        .collect();
    let at = if focused {
        input.cursor().min(units.len())
    } else {
        0
    };
    let cursor_col: usize = units[..at].iter().map(|u| u.1).sum();
    // Scroll out characters from the start until the cursor's column is on screen.
    let (mut start, mut skipped) = (0, 0);
    while cursor_col - skipped > width - 1 && start < at {
        skipped += units[start].1;
        start += 1;
    }
    let mut text = String::new();
    let mut used = 0;
    for (i, (shown, w)) in units[start..].iter().enumerate() {
        if used + w > width {
            if !focused {
                // Cut: the last column says so.
                while let Some(c) = text.pop() {
                    used -= inert(c.encode_utf8(&mut [0; 4])).width();
                    if used < width {
                        break;
                    }
                }
                text.push('…');
                used += 1;
            }
            break;
        }
        if i == 0 && start > 0 {
            text.push('…');
            text.push_str(&" ".repeat(w.saturating_sub(1)));
        } else {
            text.push_str(shown);
        }
        used += w;
    }
    text.push_str(&" ".repeat(width - used));
    View {
        text,
        cursor: cursor_col - skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tui_input::InputRequest;

    fn input(value: &str, cursor: usize) -> Input {
        Input::new(value.to_string()).with_cursor(cursor)
    }

    fn view(input: &Input, width: usize) -> View {
        super::view(input, width, true)
    }

    #[test]
    fn a_short_value_is_padded_and_the_cursor_follows_it() {
        let v = view(&input("bob", 3), 8);
        assert_eq!(
            v,
            View {
                text: "bob     ".into(),
                cursor: 3
            }
        );
        assert_eq!(view(&input("bob", 1), 8).cursor, 1);
        assert_eq!(
            view(&Input::default(), 4),
            View {
                text: "    ".into(),
                cursor: 0
            }
        );
    }

    #[test]
    fn a_long_value_scrolls_to_keep_the_cursor_in_view() {
        let long = "abcdefghijklmnopqrstuvwxyz";
        // Cursor at the end: the last 8 characters after the mark, the cursor on the
        // 10th column.
        let v = view(&input(long, 26), 10);
        assert_eq!(
            v,
            View {
                text: "…stuvwxyz ".into(),
                cursor: 9
            }
        );
        // A value exactly as wide as the field: the cursor after it needs a column.
        let v = view(&input("abcd", 4), 4);
        assert_eq!(
            v,
            View {
                text: "…cd ".into(),
                cursor: 3
            }
        );
        // Cursor at the start: the start shows, the rest is cut at the width.
        let v = view(&input(long, 0), 10);
        assert_eq!(
            v,
            View {
                text: "abcdefghij".into(),
                cursor: 0
            }
        );
        // Moving left from the end brings the start back into view step by step.
        let mut i = input(long, 26);
        for _ in 0..20 {
            i.handle(InputRequest::GoToPrevChar);
        }
        let v = view(&i, 10);
        assert_eq!(
            v,
            View {
                text: "abcdefghij".into(),
                cursor: 6
            }
        );
    }

    #[test]
    fn wide_and_control_characters_take_their_columns() {
        // Two columns each for the CJK characters.
        let v = view(&input("日本語", 3), 10);
        assert_eq!(
            v,
            View {
                text: "日本語    ".into(),
                cursor: 6
            }
        );
        let v = view(&input("日本語テスト", 6), 6);
        assert_eq!(
            v,
            View {
                text: "… ト  ".into(),
                cursor: 4
            }
        );
        // An escape character shows as `\e` (two columns) and counts as two.
        let v = view(&input("a\u{1b}b", 3), 10);
        assert_eq!(
            v,
            View {
                text: "a\\eb      ".into(),
                cursor: 4
            }
        );
        assert!(!v.text.chars().any(char::is_control));
    }

    #[test]
    fn without_focus_the_start_shows_and_a_cut_is_marked() {
        let long = "abcdefghijklmnopqrstuvwxyz";
        let v = super::view(&input(long, 26), 10, false);
        assert_eq!(v.text, "abcdefghi…");
        assert_eq!(super::view(&input("abc", 3), 5, false).text, "abc  ");
        // A wide character cut by the mark leaves no half of itself.
        let v = super::view(&input("日本語テスト", 6), 6, false);
        assert_eq!(v.text, "日本… ");
        assert_eq!(v.text.width(), 6);
    }
}
