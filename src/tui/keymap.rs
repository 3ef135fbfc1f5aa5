//! The one key map. Dispatch, the hint line and `?` help are all generated from
//! [`BINDINGS`], so they cannot drift apart.

use super::screens::ScreenId;
use keyward::service::Need;
use keyward::{Listing, Step};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Quit,
    /// Ctrl-Z: stop and hand the terminal back to the shell (`fg` resumes).
    Suspend,
    Back,
    /// A number key: the screen registered under it.
    Jump,
    NextScreen,
    PrevScreen,
    Palette,
    Help,
    DomainPicker,
    Reload,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Filter,
    SortNext,
    SortReverse,
    Open,
    /// `Enter` on a list: every detail of the selected row in a pop-up.
    Details,
    New,
    Delete,
    ToggleStatus,
    ChangeRole,
    EnableApi,
    Mint,
    NewKey,
    Revoke,
    Inspect,
    PaneLeft,
    PaneRight,
    Grant,
    RevokeScopes,
    SetDefault,
    LoadDemo,
    RemoveUser,
    RotateAffiliate,
    Purge,
    MasterKey,
    Edit,
    VerifyAudit,
    Import,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy)]
pub enum On {
    All,
    Lists,
    Only(&'static [ScreenId]),
}

impl On {
    pub fn covers(&self, s: ScreenId) -> bool {
        match self {
            On::All => true,
            On::Lists => {
                s.is_list()
                    || matches!(
                        s,
                        ScreenId::Roles
                            | ScreenId::Operators
                            | ScreenId::Dashboard
                            | ScreenId::Keys
                            | ScreenId::Apps
                            | ScreenId::SigningKeys
                    )
            }
            On::Only(list) => list.contains(&s),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}
const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}
const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

/// One row of the key map.
pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written in help and hints.
    pub label: &'static str,
    pub on: On,
    pub desc: &'static str,
    pub cmd: Cmd,
    pub need: Need,
    /// Shown in the hint line of the screens it covers.
    pub hint: bool,
    /// `Some(why)` when the action waits for a part of Keyward not built yet.
    pub unavailable: Option<&'static str>,
}

use ScreenId as S;
const USERS: &[ScreenId] = &[S::Users];

pub static BINDINGS: &[Binding] = &[
    Binding {
        keys: &[
            k('1'),
            k('2'),
            k('3'),
            k('4'),
            k('5'),
            k('6'),
            k('7'),
            k('8'),
            k('9'),
            k('0'),
        ],
        label: "1…0",
        on: On::All,
        desc: "switch screen",
        cmd: Cmd::Jump,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[code(KeyCode::Tab)],
        label: "Tab",
        on: On::All,
        desc: "next screen",
        cmd: Cmd::NextScreen,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[code(KeyCode::BackTab)],
        label: "S-Tab",
        on: On::All,
        desc: "previous screen",
        cmd: Cmd::PrevScreen,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k(':')],
        label: ":",
        on: On::All,
        desc: "command palette (:users bob)",
        cmd: Cmd::Palette,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('?')],
        label: "?",
        on: On::All,
        desc: "help for this screen",
        cmd: Cmd::Help,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('D')],
        label: "D",
        on: On::All,
        desc: "pick the domain filter",
        cmd: Cmd::DomainPicker,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[ctrl('r')],
        label: "C-r",
        on: On::All,
        desc: "reload",
        cmd: Cmd::Reload,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('j'), code(KeyCode::Down)],
        label: "j/↓",
        on: On::Lists,
        desc: "down",
        cmd: Cmd::Down,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('k'), code(KeyCode::Up)],
        label: "k/↑",
        on: On::Lists,
        desc: "up",
        cmd: Cmd::Up,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[code(KeyCode::PageDown), ctrl('d')],
        label: "PgDn",
        on: On::Lists,
        desc: "page down",
        cmd: Cmd::PageDown,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[code(KeyCode::PageUp), ctrl('u')],
        label: "PgUp",
        on: On::Lists,
        desc: "page up",
        cmd: Cmd::PageUp,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('g'), code(KeyCode::Home)],
        label: "g",
        on: On::Lists,
        desc: "first row",
        cmd: Cmd::Top,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('G'), code(KeyCode::End)],
        label: "G",
        on: On::Lists,
        desc: "last row",
        cmd: Cmd::Bottom,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('h'), code(KeyCode::Left)],
        label: "h/l",
        on: On::Only(&[S::Roles, S::Dashboard]),
        desc: "panes",
        cmd: Cmd::PaneLeft,
        need: Need::Read,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('l'), code(KeyCode::Right)],
        label: "l",
        on: On::Only(&[S::Roles, S::Dashboard]),
        desc: "right pane",
        cmd: Cmd::PaneRight,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('/')],
        label: "/",
        on: On::Only(&[
            S::Users,
            S::Stations,
            S::Keys,
            S::Apps,
            S::Tokens,
            S::SigningKeys,
            S::Operators,
            S::Audit,
        ]),
        desc: "filter",
        cmd: Cmd::Filter,
        need: Need::Read,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('s')],
        label: "s",
        on: On::Only(&[S::Users, S::Stations, S::Keys, S::Tokens]),
        desc: "sort",
        cmd: Cmd::SortNext,
        need: Need::Read,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('S')],
        label: "S",
        on: On::Only(&[S::Users, S::Stations, S::Keys, S::Tokens, S::Audit]),
        desc: "reverse the sort",
        cmd: Cmd::SortReverse,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        label: "Enter",
        on: On::Only(&[S::Dashboard]),
        desc: "open sign-up / token",
        cmd: Cmd::Open,
        need: Need::Read,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        label: "Enter",
        on: On::Only(&[
            S::Users,
            S::Roles,
            S::Stations,
            S::Keys,
            S::Apps,
            S::Tokens,
            S::SigningKeys,
            S::Operators,
            S::Audit,
        ]),
        desc: "all details of the row",
        cmd: Cmd::Details,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('a')],
        label: "a",
        on: On::Only(USERS),
        desc: "enable API",
        cmd: Cmd::EnableApi,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('t')],
        label: "t",
        on: On::Only(USERS),
        desc: "mint",
        cmd: Cmd::Mint,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('X')],
        label: "X",
        on: On::Only(USERS),
        desc: "remove user",
        cmd: Cmd::RemoveUser,
        need: Need::Admin,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('A')],
        label: "A",
        on: On::Only(USERS),
        desc: "new affiliate id",
        cmd: Cmd::RotateAffiliate,
        need: Need::Support,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('I')],
        label: "I",
        on: On::Only(USERS),
        desc: "import users from a CSV file",
        cmd: Cmd::Import,
        need: Need::Support,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('V')],
        label: "V",
        on: On::Only(&[S::Audit]),
        desc: "verify the hash chain",
        cmd: Cmd::VerifyAudit,
        need: Need::Read,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('P')],
        label: "P",
        on: On::Only(&[S::Tokens]),
        desc: "purge expired records",
        cmd: Cmd::Purge,
        need: Need::Global,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('M')],
        label: "M",
        on: On::Only(&[S::SigningKeys]),
        desc: "rotate the master key",
        cmd: Cmd::MasterKey,
        need: Need::Global,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('e')],
        label: "e",
        on: On::Only(&[S::Users]),
        desc: "rename",
        cmd: Cmd::Edit,
        need: Need::Support,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('e')],
        label: "e",
        on: On::Only(&[S::Stations]),
        desc: "edit identifiers",
        cmd: Cmd::Edit,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('e')],
        label: "e",
        on: On::Only(&[S::Roles]),
        desc: "edit scope",
        cmd: Cmd::Edit,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('n')],
        label: "n",
        on: On::Only(&[S::Keys]),
        desc: "new API key",
        cmd: Cmd::NewKey,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('n')],
        label: "n",
        on: On::Only(&[S::Apps]),
        desc: "new app",
        cmd: Cmd::New,
        need: Need::Admin,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('+')],
        label: "+",
        on: On::Only(&[S::Apps]),
        desc: "grant consent",
        cmd: Cmd::Grant,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('-')],
        label: "-",
        on: On::Only(&[S::Apps]),
        desc: "revoke consent",
        cmd: Cmd::RevokeScopes,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('R')],
        label: "R",
        on: On::Only(USERS),
        desc: "role",
        cmd: Cmd::ChangeRole,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('x')],
        label: "x",
        on: On::Only(USERS),
        desc: "disable/enable",
        cmd: Cmd::ToggleStatus,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('n')],
        label: "n",
        on: On::Only(&[S::Users, S::Stations]),
        desc: "new",
        cmd: Cmd::New,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('n')],
        label: "n",
        on: On::Only(&[S::Roles, S::Operators]),
        desc: "new",
        cmd: Cmd::New,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('n')],
        label: "n",
        on: On::Only(&[S::Dashboard]),
        desc: "new domain",
        cmd: Cmd::New,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('x')],
        label: "x",
        on: On::Only(&[S::Stations]),
        desc: "remove station",
        cmd: Cmd::Delete,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('n')],
        label: "n",
        on: On::Only(&[S::SigningKeys]),
        desc: "rotate (new signing key)",
        cmd: Cmd::New,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('x')],
        label: "x",
        on: On::Only(&[S::SigningKeys]),
        desc: "retire",
        cmd: Cmd::Delete,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('x')],
        label: "x",
        on: On::Only(&[S::Apps]),
        desc: "remove app",
        cmd: Cmd::Delete,
        need: Need::Admin,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('x'), k('r')],
        label: "x/r",
        on: On::Only(&[S::Keys]),
        desc: "delete key (revokes its tokens)",
        cmd: Cmd::Delete,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('x')],
        label: "x",
        on: On::Only(&[S::Roles, S::Operators]),
        desc: "remove",
        cmd: Cmd::Delete,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('+')],
        label: "+",
        on: On::Only(&[S::Roles]),
        desc: "grant",
        cmd: Cmd::Grant,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('-')],
        label: "-",
        on: On::Only(&[S::Roles]),
        desc: "revoke",
        cmd: Cmd::RevokeScopes,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('d')],
        label: "d",
        on: On::Only(&[S::Roles]),
        desc: "default",
        cmd: Cmd::SetDefault,
        need: Need::Global,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('r')],
        label: "r",
        on: On::Only(&[S::Tokens]),
        desc: "revoke token",
        cmd: Cmd::Revoke,
        need: Need::Support,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('i')],
        label: "i",
        on: On::Only(&[S::Tokens]),
        desc: "inspect",
        cmd: Cmd::Inspect,
        need: Need::Read,
        hint: true,
        unavailable: None,
    },
    Binding {
        keys: &[k('L')],
        label: "L",
        on: On::Only(&[S::Dashboard]),
        desc: "load demo data (empty database)",
        cmd: Cmd::LoadDemo,
        need: Need::Global,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[k('q'), code(KeyCode::Esc)],
        label: "q/Esc",
        on: On::All,
        desc: "back; q on the Dashboard quits",
        cmd: Cmd::Back,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[ctrl('c')],
        label: "C-c",
        on: On::All,
        desc: "quit at once",
        cmd: Cmd::Quit,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
    Binding {
        keys: &[ctrl('z')],
        label: "C-z",
        on: On::All,
        desc: "suspend (fg resumes)",
        cmd: Cmd::Suspend,
        need: Need::Read,
        hint: false,
        unavailable: None,
    },
];

fn matches(key: &Key, ev: &KeyEvent) -> bool {
    let ev_ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    if key.ctrl != ev_ctrl {
        return false;
    }
    match (key.code, ev.code) {
        (KeyCode::Char(a), KeyCode::Char(b)) => {
            if key.ctrl {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        }
        (a, b) => a == b,
    }
}

/// The binding a key press selects on a screen.
pub fn lookup(screen: ScreenId, ev: &KeyEvent) -> Option<&'static Binding> {
    BINDINGS
        .iter()
        .find(|b| b.on.covers(screen) && b.keys.iter().any(|k| matches(k, ev)))
}

/// For a key that does nothing on `screen` but does on others: what it does and where
/// (or, for a key that means different things on different screens, that it does
/// nothing here), so that a key pressed on the wrong screen is not silently dropped.
pub fn elsewhere(screen: ScreenId, ev: &KeyEvent) -> Option<String> {
    let others: Vec<&Binding> = BINDINGS
        .iter()
        .filter(|b| !b.on.covers(screen) && b.keys.iter().any(|k| matches(k, ev)))
        .collect();
    let first = others.first()?;
    if others.iter().any(|b| b.desc != first.desc) {
        return Some(format!(
            "{} does nothing on {}; ? lists its keys",
            first.label,
            screen.def().title
        ));
    }
    let screens: Vec<&str> = super::screens::SCREENS
        .iter()
        .filter(|d| others.iter().any(|b| b.on.covers(d.id)))
        .map(|d| d.title)
        .collect();
    Some(format!(
        "{} ({}) works on {}",
        first.label,
        first.desc,
        screens.join(", ")
    ))
}

/// The bindings of a screen, in table order.
pub fn for_screen(screen: ScreenId) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.on.covers(screen))
}

/// The bindings the hint line shows for `screen`: those marked `hint`, one per label.
pub fn hints(screen: ScreenId) -> impl Iterator<Item = &'static Binding> {
    let mut seen: Vec<&str> = Vec::new();
    for_screen(screen).filter(move |b| {
        let first = b.hint && !seen.contains(&b.label);
        if first {
            seen.push(b.label);
        }
        first
    })
}

/// `on Roles & scopes (3)`: a screen as the tab bar and its number key name it.
fn on(screen: ScreenId) -> String {
    let d = screen.def();
    format!("on {} ({})", d.title, d.key)
}

/// The key that does `cmd` on `screen`, as help writes it.
fn key_for(screen: ScreenId, cmd: Cmd) -> &'static str {
    for_screen(screen)
        .find(|b| b.cmd == cmd)
        .map_or("?", |b| b.label)
}

/// A core error's next step in the console's terms: the screen and the key that take
/// it (the core's own wording names CLI commands).
pub fn step(s: &Step) -> Option<String> {
    let roles = on(S::Roles);
    Some(match s {
        Step::AddScope => format!(
            "add it first: {roles}, in the scopes pane press {}",
            key_for(S::Roles, Cmd::New)
        ),
        Step::RevokeScope { .. } => format!(
            "revoke it from each first: {roles}, select the role and press {}",
            key_for(S::Roles, Cmd::RevokeScopes)
        ),
        Step::EditImplying => format!(
            "change those first: {roles}, select each in the scopes pane and press {}",
            key_for(S::Roles, Cmd::Edit)
        ),
        Step::SetDefaultRole { other } => format!(
            "make {} role the default first: {roles}, select it and press {}",
            if *other { "another" } else { "a" },
            key_for(S::Roles, Cmd::SetDefault)
        ),
        Step::RotateSigningKey => format!(
            "rotate first: {}, press {}",
            on(S::SigningKeys),
            key_for(S::SigningKeys, Cmd::New)
        ),
        Step::AddDomain => format!(
            "add one first: {}, press {}",
            on(S::Dashboard),
            key_for(S::Dashboard, Cmd::New)
        ),
        Step::SearchUsers => format!(
            "{}, press {} to search them",
            on(S::Users),
            key_for(S::Users, Cmd::Filter)
        ),
        Step::EnableUser => format!(
            "enable the user first: {}, select them and press {}",
            on(S::Users),
            key_for(S::Users, Cmd::ToggleStatus)
        ),
        Step::RevokeSignedTokens { .. } => {
            "wait until they expire, or press x again to retire it revoking them".into()
        }
        Step::List(l) => {
            let screen = match l {
                Listing::Stations => S::Stations,
                Listing::Keys => S::Keys,
                Listing::Apps => S::Apps,
                Listing::Tokens => S::Tokens,
            };
            let d = screen.def();
            format!("{} ({}) lists them", d.title, d.key)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_screens_hint_line_fits_in_80_columns() {
        for d in crate::tui::screens::SCREENS {
            let mut w = 1;
            for b in hints(d.id) {
                w += b.label.chars().count() + 1 + b.desc.chars().count() + 3;
            }
            assert!(w.saturating_sub(3) <= 80, "{:?}: {w} columns", d.id);
        }
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn lookup_respects_screen_scope() {
        assert_eq!(
            lookup(S::Users, &key(KeyCode::Char('x'))).unwrap().cmd,
            Cmd::ToggleStatus
        );
        assert_eq!(
            lookup(S::Stations, &key(KeyCode::Char('x'))).unwrap().cmd,
            Cmd::Delete
        );
        assert!(lookup(S::Audit, &key(KeyCode::Char('x'))).is_none());
        assert_eq!(
            lookup(S::Users, &key(KeyCode::Char('k'))).unwrap().cmd,
            Cmd::Up
        );
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(S::Audit, &c).unwrap().cmd, Cmd::Quit);
        let r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL);
        assert_eq!(lookup(S::Tokens, &r).unwrap().cmd, Cmd::Reload);
        assert_eq!(
            lookup(S::Tokens, &key(KeyCode::Char('r'))).unwrap().cmd,
            Cmd::Revoke
        );
    }

    #[test]
    fn next_steps_name_the_console_keys_not_cli_commands() {
        let cases = [
            (
                Step::AddScope,
                "on Roles & scopes (3), in the scopes pane press n",
            ),
            (
                Step::RevokeScope {
                    scope: "bulk".into(),
                },
                "select the role and press -",
            ),
            (Step::EditImplying, "in the scopes pane and press e"),
            (
                Step::SetDefaultRole { other: true },
                "make another role the default first: on Roles & scopes (3), select it and press d",
            ),
            (Step::RotateSigningKey, "on Signing keys (8), press n"),
            (Step::AddDomain, "on Dashboard (1), press n"),
            (Step::SearchUsers, "on Users (2), press / to search"),
            (Step::EnableUser, "on Users (2), select them and press x"),
            (
                Step::RevokeSignedTokens { kid: "k".into() },
                "press x again to retire it revoking them",
            ),
            (Step::List(Listing::Stations), "Stations (4) lists them"),
            (Step::List(Listing::Keys), "API keys (5) lists them"),
            (Step::List(Listing::Apps), "Developer apps (6) lists them"),
            (Step::List(Listing::Tokens), "Tokens (7) lists them"),
        ];
        for (s, want) in cases {
            let said = step(&s).unwrap();
            assert!(said.contains(want), "{s:?}: {said}");
            assert!(!said.contains("keyward") && !said.contains('`'), "{said}");
            // The CLI's wording of the same step is a command.
            assert!(s.to_string().contains("`keyward "), "{s}");
        }
        let e = keyward::Error::blocked(
            "scope bulk is granted by role(s) Partner",
            Step::RevokeScope {
                scope: "bulk".into(),
            },
        );
        assert_eq!(
            super::super::tasks::msg(e),
            "scope bulk is granted by role(s) Partner; revoke it from each first: \
             on Roles & scopes (3), select the role and press -"
        );
    }

    #[test]
    fn every_screen_key_is_bound() {
        for d in super::super::screens::SCREENS {
            let b = lookup(S::Dashboard, &key(KeyCode::Char(d.key))).expect("bound");
            assert_eq!(b.cmd, Cmd::Jump, "{} is in the number row", d.title);
        }
    }
}
