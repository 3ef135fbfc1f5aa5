//! Rendering user-supplied text inert: control characters and escape sequences are
//! shown escaped (`\e`, `\x07`, `\u{202e}`), never passed to a terminal.

use std::borrow::Cow;

pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Returns `s` with every control or invisible-formatting character escaped.
pub fn inert(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{1b}' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && needs_escape(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences() {
        assert_eq!(inert("plain"), "plain");
        assert_eq!(inert("a\u{1b}]0;owned\u{7}b"), "a\\e]0;owned\\x07b");
        assert_eq!(inert("\u{1b}[2J"), "\\e[2J");
        assert_eq!(inert("x\u{9b}y"), "x\\x9by");
        assert_eq!(inert("r\u{202e}l"), "r\\u{202e}l");
    }

    #[test]
    fn output_never_contains_control_bytes() {
        let all: String = (0u32..0x300).filter_map(char::from_u32).collect();
        assert!(!inert(&all).chars().any(needs_escape));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn sanitised_output_never_contains_a_control_character(s in any::<String>()) {
            let out = inert(&s);
            prop_assert!(!out.chars().any(needs_escape));
            // Nothing is lost: text without control characters is unchanged.
            if !s.chars().any(needs_escape) {
                prop_assert_eq!(out.as_ref(), s.as_str());
            }
        }
    }
}
