//! A form: text fields (tui-input), single choices and checklists, each with an
//! inline validation message. What a form *means* lives in `app.rs` (its `FormKind`);
//! this module only edits values.

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

#[derive(Debug, Clone)]
pub enum FieldKind {
    Text(Input),
    Choice {
        options: Vec<String>,
        sel: usize,
    },
    Checks {
        options: Vec<(String, bool)>,
        cursor: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub kind: FieldKind,
    pub error: Option<String>,
    /// A grey note after the field (e.g. "role Consumer allows: read").
    pub note: Option<String>,
    /// Whether the user changed it (errors show only for touched fields until submit).
    pub touched: bool,
}

impl Field {
    pub fn text(label: &'static str, value: &str) -> Field {
        Field {
            label,
            kind: FieldKind::Text(Input::new(value.to_string())),
            error: None,
            note: None,
            touched: false,
        }
    }
    pub fn choice(label: &'static str, options: Vec<String>, sel: usize) -> Field {
        Field {
            label,
            kind: FieldKind::Choice { options, sel },
            error: None,
            note: None,
            touched: false,
        }
    }
    pub fn checks(label: &'static str, options: Vec<(String, bool)>) -> Field {
        Field {
            label,
            kind: FieldKind::Checks { options, cursor: 0 },
            error: None,
            note: None,
            touched: false,
        }
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Field {
        self.note = Some(note.into());
        self
    }
    /// The text value, the chosen option, or the checked options joined by spaces.
    pub fn value(&self) -> String {
        match &self.kind {
            FieldKind::Text(i) => i.value().trim().to_string(),
            FieldKind::Choice { options, sel } => options.get(*sel).cloned().unwrap_or_default(),
            FieldKind::Checks { options, .. } => options
                .iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
    pub fn checked(&self) -> Vec<String> {
        match &self.kind {
            FieldKind::Checks { options, .. } => options
                .iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| n.clone())
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Form {
    pub title: String,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// A line above the fields (what the form does).
    pub intro: Option<String>,
    /// Why the last submission was refused (the form came back for a correction);
    /// cleared by the next edit.
    pub failed: Option<String>,
}

/// What a key did to a form.
#[derive(Debug, PartialEq, Eq)]
pub enum FormEvent {
    Edited,
    Moved,
    Submit,
    Cancel,
    Ignored,
}

impl Form {
    pub fn new(title: impl Into<String>, fields: Vec<Field>) -> Form {
        Form {
            title: title.into(),
            fields,
            focus: 0,
            intro: None,
            failed: None,
        }
    }

    pub fn value(&self, label: &str) -> String {
        self.fields
            .iter()
            .find(|f| f.label == label)
            .map(Field::value)
            .unwrap_or_default()
    }

    pub fn field(&self, label: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.label == label)
    }

    pub fn key(&mut self, k: KeyEvent) -> FormEvent {
        let n = self.fields.len();
        match k.code {
            KeyCode::Esc => return FormEvent::Cancel,
            KeyCode::Enter => return FormEvent::Submit,
            KeyCode::Tab | KeyCode::Down => {
                self.focus = (self.focus + 1) % n.max(1);
                return FormEvent::Moved;
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.focus = (self.focus + n.max(1) - 1) % n.max(1);
                return FormEvent::Moved;
            }
            _ => {}
        }
        let Some(f) = self.fields.get_mut(self.focus) else {
            return FormEvent::Ignored;
        };
        let edited = match &mut f.kind {
            FieldKind::Text(input) => {
                if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
                    return FormEvent::Ignored;
                }
                input.handle_event(&Event::Key(k)).is_some()
            }
            FieldKind::Choice { options, sel } => match k.code {
                KeyCode::Left | KeyCode::Char('h') => {
                    *sel = (*sel + options.len().max(1) - 1) % options.len().max(1);
                    true
                }
                KeyCode::Right | KeyCode::Char('l') | KeyCode::Char(' ') => {
                    *sel = (*sel + 1) % options.len().max(1);
                    true
                }
                _ => false,
            },
            FieldKind::Checks { options, cursor } => match k.code {
                KeyCode::Left | KeyCode::Char('h') => {
                    *cursor = cursor.saturating_sub(1);
                    false
                }
                KeyCode::Right | KeyCode::Char('l') => {
                    *cursor = (*cursor + 1).min(options.len().saturating_sub(1));
                    false
                }
                KeyCode::Char(' ') | KeyCode::Char('x') => {
                    if let Some(o) = options.get_mut(*cursor) {
                        o.1 = !o.1;
                    }
                    true
                }
                _ => false,
            },
        };
        if edited {
            f.touched = true;
            self.failed = None;
            FormEvent::Edited
        } else {
            FormEvent::Ignored
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn edits_moves_and_toggles() {
        let mut f = Form::new(
            "t",
            vec![
                Field::text("email", ""),
                Field::choice("role", vec!["A".into(), "B".into()], 0),
                Field::checks(
                    "scopes",
                    vec![("read".into(), true), ("write".into(), false)],
                ),
            ],
        );
        assert_eq!(f.key(key(KeyCode::Char('a'))), FormEvent::Edited);
        assert_eq!(f.value("email"), "a");
        f.key(key(KeyCode::Tab));
        f.key(key(KeyCode::Right));
        assert_eq!(f.value("role"), "B");
        f.key(key(KeyCode::Tab));
        f.key(key(KeyCode::Right));
        f.key(key(KeyCode::Char(' ')));
        assert_eq!(f.value("scopes"), "read write");
        assert_eq!(f.key(key(KeyCode::Enter)), FormEvent::Submit);
        assert_eq!(f.key(key(KeyCode::Esc)), FormEvent::Cancel);
    }
}
