//! The screen registry. A screen is one module here plus one entry in [`SCREENS`].

pub mod apps;
pub mod audit;
pub mod dashboard;
pub mod keys;
pub mod operators;
pub mod roles;
pub mod signing;
pub mod stations;
pub mod tokens;
pub mod users;

/// The selected row's details on the current screen (`None` on the Dashboard).
pub fn detail(app: &super::app::App) -> Option<super::widgets::detail::Detail> {
    Some(match app.screen {
        ScreenId::Dashboard => return None,
        ScreenId::Users => users::detail(app),
        ScreenId::Roles => roles::detail(app),
        ScreenId::Stations => stations::detail(app),
        ScreenId::Keys => keys::detail(app),
        ScreenId::Apps => apps::detail(app),
        ScreenId::Tokens => tokens::detail(app),
        ScreenId::SigningKeys => signing::detail(app),
        ScreenId::Operators => operators::detail(app),
        ScreenId::Audit => audit::detail(app),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScreenId {
    Dashboard,
    Users,
    Roles,
    Stations,
    Keys,
    Apps,
    Tokens,
    SigningKeys,
    Operators,
    Audit,
}

/// A screen as the tab bar, the number keys and the command palette know it.
pub struct ScreenDef {
    pub id: ScreenId,
    pub key: char,
    pub tab: &'static str,
    /// The tab label when the terminal is narrow.
    pub short: &'static str,
    pub title: &'static str,
    /// Whether it is a paged list (gets `/`, sorting, `g`/`G`, ...).
    pub list: bool,
    /// Sort columns, in `s` order.
    pub sorts: &'static [&'static str],
}

pub const SCREENS: &[ScreenDef] = &[
    ScreenDef {
        id: ScreenId::Dashboard,
        key: '1',
        tab: "Dash",
        short: "Dash",
        title: "Dashboard",
        list: false,
        sorts: &[],
    },
    ScreenDef {
        id: ScreenId::Users,
        key: '2',
        tab: "Users",
        short: "Users",
        title: "Users",
        list: true,
        sorts: &["email", "created"],
    },
    ScreenDef {
        id: ScreenId::Roles,
        key: '3',
        tab: "Roles",
        short: "Roles",
        title: "Roles & scopes",
        list: false,
        sorts: &[],
    },
    ScreenDef {
        id: ScreenId::Stations,
        key: '4',
        tab: "Stations",
        short: "Stns",
        title: "Stations",
        list: true,
        sorts: &["created", "name"],
    },
    ScreenDef {
        id: ScreenId::Keys,
        key: '5',
        tab: "Keys",
        short: "Keys",
        title: "API keys",
        list: true,
        sorts: &["created", "last used"],
    },
    ScreenDef {
        id: ScreenId::Apps,
        key: '6',
        tab: "Apps",
        short: "Apps",
        title: "Developer apps",
        list: false,
        sorts: &[],
    },
    ScreenDef {
        id: ScreenId::Tokens,
        key: '7',
        tab: "Tokens",
        short: "Tokens",
        title: "Tokens",
        list: true,
        sorts: &["issued", "expires"],
    },
    ScreenDef {
        id: ScreenId::SigningKeys,
        key: '8',
        tab: "Signing",
        short: "Sign",
        title: "Signing keys",
        list: false,
        sorts: &[],
    },
    ScreenDef {
        id: ScreenId::Operators,
        key: '9',
        tab: "Operators",
        short: "Ops",
        title: "Operators",
        list: false,
        sorts: &[],
    },
    ScreenDef {
        id: ScreenId::Audit,
        key: '0',
        tab: "Audit",
        short: "Audit",
        title: "Audit",
        list: true,
        sorts: &["time"],
    },
];

impl ScreenId {
    pub fn def(self) -> &'static ScreenDef {
        SCREENS
            .iter()
            .find(|d| d.id == self)
            .expect("every screen is registered")
    }
    pub fn index(self) -> usize {
        SCREENS
            .iter()
            .position(|d| d.id == self)
            .expect("registered")
    }
    pub fn by_key(c: char) -> Option<ScreenId> {
        SCREENS.iter().find(|d| d.key == c).map(|d| d.id)
    }
    pub fn is_list(self) -> bool {
        self.def().list
    }
}
