//! Application state and `update`: terminal events and background answers come in as
//! [`Action`]s; `update` changes plain data and returns [`Effect`]s (database work)
//! for the runtime to spawn. Nothing here touches a terminal or a database.

use super::keymap::{self, Cmd};
use super::screens::{SCREENS, ScreenId};
use super::widgets::form::{Field, Form, FormEvent};
use super::widgets::list::{Cursor, CursorKey, ListRow, PageSpec, Paged, Pos};
use super::widgets::palette::Palette;
use keyward::Actor;
use keyward::model;
use keyward::service::Need;
use keyward::service::console::Dashboard;
use keyward::service::directory::{OperatorView, UserDetail};
use keyward::service::keyring::SigningKeyView;
use keyward::service::scopes::{RoleView, ScopeView};
use keyward::service::tokens::Introspection;
use keyward::store::audit::AuditRow;
use keyward::store::console::TokenRow;
use keyward::store::credentials::{AppRow, ConsentRow, KeyRow};
use keyward::store::directory::{DomainRow, SettingRow, StationRow, UserRow};
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

/// Milliseconds between ticks (spinner, debounce, toasts).
pub const TICK_MS: u64 = 50;
/// A typed filter is sent at the next quiet tick (within 50 ms of the last key).
pub const DEBOUNCE_TICKS: u64 = 1;
/// How long a toast stays (ticks).
const TOAST_TICKS: u64 = 80;
/// How often the Dashboard reloads itself while it is shown and nothing is open over
/// it (ticks: 5 s), so that support staff who keep it open see sign-ups arrive.
pub const DASH_REFRESH_TICKS: u64 = 5_000 / TICK_MS;
/// Rows of the dashboard's short lists.
pub const DASH_LIST: i64 = 20;
/// Keys the API keys screen lists.
/// Deleting a key with at least this many live tokens asks for its name.
pub const BIG_KEY: i64 = 10;
/// Users loaded by the demo key.
pub const DEMO_USERS: u64 = 200;

/// A row's cursor: its key in the list's sort order and its id (the tie-break).
fn keyed(key: CursorKey, id: &str) -> Cursor {
    Cursor {
        key,
        id: id.to_string(),
    }
}

// Each row's cursor key for each of its screen's `sorts`, in that order.

impl ListRow for UserRow {
    fn cursor(&self, sort: usize) -> Cursor {
        match sort {
            1 => keyed(CursorKey::Int(self.created_at), &self.id),
            _ => keyed(CursorKey::Str(self.email.to_lowercase()), &self.id),
        }
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl ListRow for StationRow {
    fn cursor(&self, sort: usize) -> Cursor {
        match sort {
            1 => keyed(CursorKey::Str(self.name_key.clone()), &self.id),
            _ => keyed(CursorKey::Int(self.created_at), &self.id),
        }
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl ListRow for KeyRow {
    fn cursor(&self, sort: usize) -> Cursor {
        match sort {
            1 => keyed(CursorKey::Int(self.used_key()), &self.id),
            _ => keyed(CursorKey::Int(self.created_at), &self.id),
        }
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl ListRow for TokenRow {
    fn cursor(&self, sort: usize) -> Cursor {
        match sort {
            1 => keyed(CursorKey::Int(self.expires_at), &self.jti),
            _ => keyed(CursorKey::Int(self.issued_at), &self.jti),
        }
    }
    fn id(&self) -> &str {
        &self.jti
    }
}

impl ListRow for AuditRow {
    fn cursor(&self, _: usize) -> Cursor {
        keyed(CursorKey::Int(self.seq), &self.hash)
    }
    fn id(&self) -> &str {
        &self.hash
    }
}

/// Database reads the runtime performs.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Dashboard {
        generation: u64,
        domain: Option<String>,
    },
    Page {
        screen: ScreenId,
        spec: PageSpec,
        domain: Option<String>,
    },
    /// The number of rows matching a list's filter, asked apart from the first page so
    /// that the page never waits for a count over a large table.
    Count {
        screen: ScreenId,
        spec: PageSpec,
        domain: Option<String>,
    },
    UserDetail {
        id: String,
    },
    Settings,
    AuditVerify,
    Roles {
        generation: u64,
    },
    Operators {
        generation: u64,
    },
    SigningKeys {
        generation: u64,
    },
    Apps {
        generation: u64,
    },
    Introspect {
        jwt: String,
    },
    /// Live tokens of a key, before deleting it.
    KeyLiveTokens {
        client_id: String,
    },
    /// What a narrowing change (a role's scope revoked, a user's role changed, a role
    /// removed) would revoke and trim, rehearsed before it is confirmed; for a purge,
    /// how many records it would delete.
    Narrowing(Box<Confirm>),
    Domains,
}

/// Where the row selected at `sel` of `old` is in `new` (rows matched by `same`), or
/// `sel` itself, within `new`.
fn follow<T>(old: Option<&[T]>, sel: usize, new: &[T], same: impl Fn(&T, &T) -> bool) -> usize {
    old.and_then(|o| o.get(sel))
        .and_then(|r| new.iter().position(|n| same(r, n)))
        .unwrap_or(sel)
        .min(new.len().saturating_sub(1))
}

/// What a [`Request::Narrowing`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Rehearsed {
    /// Users moved (a role removed), and what the change would revoke and trim.
    Narrowing(u64, keyward::service::scopes::Narrowing),
    /// A purge: what it deletes, and the cutoff counted with.
    Purge(keyward::service::tokens::Purgeable),
    /// A domain's users and stations (it goes only when both are 0).
    DomainUse(i64, i64),
}

/// Rows of one page.
#[derive(Debug, Clone)]
pub enum Rows {
    Users(Vec<UserRow>),
    Stations(Vec<StationRow>),
    Tokens(Vec<TokenRow>),
    Audit(Vec<AuditRow>),
    Keys(Vec<KeyRow>),
}

/// The Apps screen's data: apps, up to [`CONSENTS_SHOWN`] consents, and each app's
/// consent count.
pub type AppsLoaded = (Vec<AppRow>, Vec<ConsentRow>, Vec<(String, i64)>);

/// Consents the Apps screen holds (the counts cover all of them).
pub const CONSENTS_SHOWN: i64 = 1000;

/// Answers of [`Request`]s. Errors are already messages for people.
#[derive(Debug, Clone)]
pub enum Loaded {
    Dashboard {
        generation: u64,
        result: Result<Box<Dashboard>, String>,
    },
    Page {
        screen: ScreenId,
        generation: u64,
        pos: Pos,
        result: Result<(Rows, Option<i64>), String>,
    },
    Count {
        screen: ScreenId,
        generation: u64,
        result: Result<i64, String>,
    },
    /// `Ok(None)`: the user no longer exists (removed meanwhile).
    UserDetail {
        id: String,
        result: Result<Option<Box<UserDetail>>, String>,
    },
    Settings(Result<Vec<SettingRow>, String>),
    AuditVerify(Result<keyward::service::audit::ChainReport, String>),
    Roles {
        generation: u64,
        result: Result<(Vec<RoleView>, Vec<ScopeView>), String>,
    },
    Operators {
        generation: u64,
        result: Result<Vec<OperatorView>, String>,
    },
    KeyLiveTokens {
        client_id: String,
        result: Result<i64, String>,
    },
    /// A [`Request::Narrowing`]'s answer.
    Narrowing {
        confirm: Box<Confirm>,
        result: Result<Rehearsed, String>,
    },
    SigningKeys {
        generation: u64,
        result: Result<Vec<SigningKeyView>, String>,
    },
    Apps {
        generation: u64,
        result: Result<AppsLoaded, String>,
    },
    Introspect {
        jwt: String,
        result: Result<Box<Introspection>, String>,
    },
    Domains(Result<Vec<DomainRow>, String>),
}

/// Changes the runtime performs through the core's services.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    DomainAdd {
        name: String,
    },
    UserAdd {
        email: String,
        domain: String,
        name: String,
        role: String,
    },
    UserStatus {
        id: String,
        email: String,
        disable: bool,
    },
    UserRole {
        id: String,
        email: String,
        role: String,
    },
    StationAdd {
        user: String,
        domain: Option<String>,
        name: String,
        vat: Option<String>,
        rn: Option<String>,
        country: Option<String>,
    },
    StationRm {
        id: String,
        name: String,
    },
    RoleAdd {
        name: String,
        description: String,
        scopes: Vec<String>,
    },
    RoleGrant {
        role: String,
        scopes: Vec<String>,
    },
    RoleRevoke {
        role: String,
        scopes: Vec<String>,
    },
    RoleDefault {
        role: String,
    },
    RoleRm {
        role: String,
        reassign: Option<String>,
    },
    ScopeAdd {
        name: String,
        description: String,
        implies: Vec<String>,
    },
    ScopeRm {
        name: String,
    },
    OperatorAdd {
        account: String,
        role: String,
        domains: Vec<String>,
    },
    OperatorRm {
        account: String,
    },
    KeyRm {
        client_id: String,
    },
    AppRm {
        client_id: String,
    },
    ConsentGrant {
        user: String,
        app: String,
        scopes: Vec<String>,
    },
    ConfigSet {
        key: String,
        value: String,
    },
    UserRm {
        email: String,
        domain: String,
    },
    AffiliateRotate {
        email: String,
        domain: String,
    },
    TokenPurge {
        retention: String,
        /// The cutoff the confirmation counted with, once counted: the purge deletes
        /// what it said, not what expired since.
        before: Option<i64>,
    },
    UserImport {
        path: String,
        domain: String,
        dry_run: bool,
    },
    MasterKeyRotate,
    ScopeEdit {
        name: String,
        description: String,
        implies: Vec<String>,
    },
    UserRename {
        id: String,
        version: i64,
        email: String,
        name: String,
    },
    StationEdit {
        id: String,
        eu_vat_id: String,
        rn: String,
        country: String,
    },
    DomainRm {
        name: String,
    },
    ConsentRevoke {
        user: String,
        app: String,
    },
    TokenRevoke {
        jti: String,
        reason: Option<String>,
    },
    SigningRotate {
        alg: String,
    },
    SigningRetire {
        kid: String,
        revoke_tokens: bool,
    },
    Demo {
        users: u64,
    },
}

/// What the "Enable API access" dialog issues.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueOp {
    /// Issue a token instead of an API key.
    pub token: bool,
    pub user_id: String,
    pub email: String,
    pub domain: String,
    /// `None`: the role's own scopes.
    pub scopes: Option<Vec<String>>,
    /// Key expiry or token lifetime; `None`: the default.
    pub expires: Option<String>,
    /// The key's name; `None`: "api key".
    pub name: Option<String>,
    /// Whether the key's grants also return refresh tokens.
    pub refresh: bool,
    /// Exempt from the token service's rate limits.
    pub rate_exempt: bool,
}

/// A new developer app (its secret is revealed once).
#[derive(Debug, Clone, PartialEq)]
pub struct AppOp {
    pub name: String,
    pub owner: String,
    pub redirect_uris: Vec<String>,
    /// `None`: the owner's role's scopes.
    pub scopes: Option<Vec<String>>,
}

/// A secret on its way to the screen once: wiped from memory when dropped, never
/// printed by `Debug`.
#[derive(Clone, PartialEq)]
pub struct Secret(pub zeroize::Zeroizing<String>);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(zeroize::Zeroizing::new(s))
    }
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A newly issued credential, shown once by the reveal dialog.
#[derive(Debug, Clone, PartialEq)]
pub struct Reveal {
    /// The dialog's title when not the default ("API key for …" / "Token for …").
    pub title: Option<String>,
    pub email: String,
    /// `Some` for an API key; `None` for a token.
    pub client_id: Option<String>,
    pub secret: Secret,
    pub scope: String,
    /// "expires 2027-02-21" / "expires in 1 h".
    pub expiry: String,
    /// Whether `c` copied it.
    pub copied: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Load(Request),
    Write(WriteOp),
    Issue(IssueOp),
    IssueApp(AppOp),
    /// Put the text on the terminal's clipboard (OSC 52).
    Clipboard(Secret),
}

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Paste(String),
    Resize(u16, u16),
    Tick { now: i64 },
    Loaded(Loaded),
    Wrote(Result<String, String>),
    Issued(Result<Box<Reveal>, String>),
}

#[derive(Debug, Clone)]
pub enum FormKind {
    NewDomain,
    NewUser,
    NewStation,
    ChangeRole {
        id: String,
        email: String,
    },
    NewRole,
    NewScope,
    Grant {
        role: String,
    },
    Revoke {
        role: String,
        users: i64,
    },
    NewOperator,
    EnableApi {
        user_id: String,
        email: String,
        domain: String,
    },
    KeyRm {
        client_id: String,
        name: String,
    },
    SigningRotate,
    TokenRevoke {
        jti: String,
    },
    NewKey,
    NewApp,
    ConfigSet {
        key: String,
    },
    UserRm {
        email: String,
        domain: String,
    },
    Purge,
    Import,
    ScopeEdit {
        name: String,
    },
    UserRename {
        id: String,
        version: i64,
        email: String,
    },
    StationEdit {
        id: String,
    },
    ConsentGrant {
        app: String,
    },
    ConsentRevoke {
        app: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    pub op: WriteOp,
}

#[derive(Debug, Clone)]
pub enum Overlay {
    Help,
    Palette(Palette),
    DomainPicker {
        sel: usize,
    },
    Form {
        kind: FormKind,
        form: Form,
    },
    Confirm(Confirm),
    Error(String),
    /// A result of several lines (an import's refused rows): a pop-up, not a toast.
    Notice(String),
    /// `Enter` on a list: every detail of the selected row, `scroll` rows down.
    Detail {
        scroll: usize,
    },
    /// A secret shown once; closing drops (and so wipes) it.
    Reveal(Box<Reveal>),
    Inspect(Box<Inspector>),
    /// `:config`: the settings, each editable with Enter.
    Settings {
        rows: Vec<SettingRow>,
        sel: usize,
    },
}

/// The token inspector: a pasted token and what introspection says of it.
#[derive(Debug, Clone)]
pub struct Inspector {
    pub input: tui_input::Input,
    /// Typing into the input (else the keys act on the result).
    pub editing: bool,
    /// The token the shown (or awaited) answer is about.
    pub asked: Option<String>,
    pub result: Option<Result<Introspection, String>>,
}

impl Inspector {
    fn answer(&self) -> Option<&Introspection> {
        match &self.result {
            Some(Ok(i)) => Some(i),
            _ => None,
        }
    }
    fn claim(&self, name: &str) -> Option<String> {
        self.answer()
            .and_then(|i| i.claims.as_ref())
            .and_then(|c| c.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }
    /// The unrevoked record `r` revokes, if the answer has one.
    pub fn revocable(&self) -> Option<&keyward::store::credentials::TokenRecord> {
        self.answer()
            .and_then(|i| i.record.as_ref())
            .filter(|r| r.revoked_at.is_none())
    }
    /// The user `u` opens: by email when the answer names it, else the `sub`.
    pub fn user(&self) -> Option<String> {
        self.answer()
            .and_then(|i| i.username.clone().or_else(|| i.sub.clone()))
            .or_else(|| self.claim("sub"))
    }
    /// The client `k` opens.
    pub fn client(&self) -> Option<String> {
        self.answer()
            .and_then(|i| i.client_id.clone())
            .or_else(|| self.claim("client_id"))
    }
}

/// A pasted token is a bearer credential: wipe it when the inspector closes.
impl Drop for Inspector {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.input.value_and_reset().zeroize();
        if let Some(a) = &mut self.asked {
            a.zeroize();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Toast {
    pub text: String,
    pub until: u64,
}

/// Who is at the console and where the data lives (for the status bar).
#[derive(Debug, Clone)]
pub struct Info {
    pub database: String,
}

/// A list loaded whole (Roles, Apps, Signing keys, Operators): `items` is what is shown,
/// every row loaded narrowed by the filter `/` types (in memory: these lists are short).
#[derive(Debug, Clone)]
pub struct Small<T> {
    pub items: Vec<T>,
    /// Every row loaded.
    all: Vec<T>,
    pub sel: usize,
    pub generation: u64,
    pub loading: bool,
    pub loaded: bool,
    pub filter: Input,
    /// The filter is being typed.
    pub editing: bool,
}

impl<T> Default for Small<T> {
    fn default() -> Self {
        Small {
            items: Vec::new(),
            all: Vec::new(),
            sel: 0,
            generation: 0,
            loading: false,
            loaded: false,
            filter: Input::default(),
            editing: false,
        }
    }
}

/// What `/` finds a whole list's row by: its text, lowercase.
pub trait Findable {
    fn text(&self) -> String;
}

impl Findable for AppRow {
    fn text(&self) -> String {
        [&self.client_id, &self.name, &self.owner_email, &self.domain]
            .map(|s| s.to_lowercase())
            .join(" ")
    }
}

impl Findable for SigningKeyView {
    fn text(&self) -> String {
        format!("{} {} {}", self.kid, self.alg, self.status).to_lowercase()
    }
}

impl Findable for OperatorView {
    fn text(&self) -> String {
        format!("{} {} {}", self.account, self.role, self.domains.join(" ")).to_lowercase()
    }
}

impl Findable for RoleView {
    fn text(&self) -> String {
        self.name.to_lowercase()
    }
}

impl<T> Small<T> {
    /// How many there are, for a title: `…` until the first answer (not a `0` that
    /// would say there are none); `3 of 22` while a filter narrows them.
    pub fn count(&self) -> String {
        if !self.loaded {
            "…".into()
        } else if self.filter.value().is_empty() {
            self.items.len().to_string()
        } else {
            format!("{} of {}", self.items.len(), self.all.len())
        }
    }
    fn restart(&mut self) -> u64 {
        self.generation += 1;
        self.loading = true;
        self.generation
    }
    fn step(&mut self, d: i64) {
        let n = self.items.len() as i64;
        if n > 0 {
            self.sel = (self.sel as i64 + d).clamp(0, n - 1) as usize;
        }
    }
}

impl<T: Clone + Findable> Small<T> {
    fn apply(&mut self, generation: u64, items: Vec<T>) -> bool {
        if generation != self.generation {
            return false;
        }
        self.all = items;
        self.refilter();
        self.loading = false;
        self.loaded = true;
        true
    }
    /// Shows the rows the filter finds (every one when it is empty).
    fn refilter(&mut self) {
        let needle = self.filter.value().trim().to_lowercase();
        self.items = if needle.is_empty() {
            self.all.clone()
        } else {
            self.all
                .iter()
                .filter(|r| r.text().contains(&needle))
                .cloned()
                .collect()
        };
        self.sel = self.sel.min(self.items.len().saturating_sub(1));
    }
}

/// `/` on a whole list (see [`Small`]); the paged lists have [`ListOps`].
pub trait WholeList {
    fn editing(&self) -> bool;
    fn set_editing(&mut self);
    /// A key while the filter is being typed.
    fn filter_key(&mut self, k: KeyEvent);
    /// Clears a non-empty filter; false when it was empty.
    fn clear_filter(&mut self) -> bool;
}

impl<T: Clone + Findable> WholeList for Small<T> {
    fn editing(&self) -> bool {
        self.editing
    }
    fn set_editing(&mut self) {
        self.editing = true;
    }
    fn filter_key(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Esc => {
                self.editing = false;
                self.clear_filter();
            }
            KeyCode::Enter => self.editing = false,
            KeyCode::Down => self.step(1),
            KeyCode::Up => self.step(-1),
            _ => {
                let before = self.filter.value().to_string();
                self.filter.handle_event(&Event::Key(k));
                if self.filter.value() != before {
                    self.sel = 0;
                    self.refilter();
                }
            }
        }
    }
    fn clear_filter(&mut self) -> bool {
        if self.filter.value().is_empty() {
            return false;
        }
        self.filter.reset();
        self.refilter();
        true
    }
}

pub struct App {
    pub theme: super::theme::Theme,
    pub actor: Actor,
    pub info: Info,
    pub now: i64,
    pub tick: u64,
    pub size: (u16, u16),
    pub screen: ScreenId,
    pub domains: Vec<DomainRow>,
    pub domain: Option<DomainRow>,
    pub dash: Option<Dashboard>,
    pub dash_sel: usize,
    /// The Dashboard's focused panel: 0 the sign-ups waiting, 1 the expiring tokens.
    pub dash_pane: usize,
    /// The highlighted expiring token.
    pub dash_exp_sel: usize,
    pub dash_generation: u64,
    pub dash_loading: bool,
    pub users: Paged<UserRow>,
    pub detail: Option<UserDetail>,
    pub detail_wanted: Option<String>,
    pub stations: Paged<StationRow>,
    pub tokens: Paged<TokenRow>,
    pub audit: Paged<AuditRow>,
    pub roles: Small<RoleView>,
    pub scopes: Vec<ScopeView>,
    /// Roles screen: 0 roles pane, 1 scopes pane.
    pub pane: usize,
    pub scope_sel: usize,
    pub operators: Small<OperatorView>,
    pub keys: Paged<KeyRow>,
    pub signing: Small<SigningKeyView>,
    pub apps: Small<AppRow>,
    pub consents: Vec<ConsentRow>,
    /// Consents per app id (all of them, not only those held).
    pub consent_counts: std::collections::HashMap<String, i64>,
    /// A user the inspector asked to open by id (its email is looked up first).
    pub open_user: Option<String>,
    pub overlay: Option<Overlay>,
    pub toast: Option<Toast>,
    pub writing: u32,
    /// The form whose write is under way: a refusal brings it back, as it was typed,
    /// saying why, instead of leaving the operator to type it all again.
    resubmit: Option<(FormKind, Form)>,
    pub quit: bool,
    /// Ctrl-Z was pressed: the event loop suspends the console (job control), then
    /// clears this.
    pub suspend: bool,
}

/// Most characters a paste types into the console (a token pasted into the inspector
/// is taken whole).
pub const PASTE_MAX: usize = 2048;

/// Rows a list shows in a terminal of height `h`: the body minus tab bar, hint and
/// status lines, title and column header, and the detail pane.
pub fn list_rows(h: u16) -> i64 {
    (h as i64 - 5 - detail_height(h) as i64).max(1)
}

pub fn detail_height(h: u16) -> u16 {
    if h >= 36 { 9 } else { 5 }
}

impl App {
    pub fn new(actor: Actor, info: Info, now: i64, size: (u16, u16)) -> App {
        App {
            theme: super::theme::Theme::from_env(),
            actor,
            info,
            now,
            tick: 0,
            size,
            screen: ScreenId::Dashboard,
            domains: Vec::new(),
            domain: None,
            dash: None,
            dash_sel: 0,
            dash_pane: 0,
            dash_exp_sel: 0,
            dash_generation: 0,
            dash_loading: false,
            users: Paged::new(false),
            detail: None,
            detail_wanted: None,
            stations: Paged::new(false),
            tokens: Paged::new(true),
            audit: Paged::new(true),
            roles: Small::default(),
            scopes: Vec::new(),
            pane: 0,
            scope_sel: 0,
            operators: Small::default(),
            keys: Paged::new(true),
            signing: Small::default(),
            apps: Small::default(),
            consents: Vec::new(),
            consent_counts: Default::default(),
            open_user: None,
            overlay: None,
            toast: None,
            writing: 0,
            resubmit: None,
            quit: false,
            suspend: false,
        }
    }

    /// The first requests: domains, roles (for forms) and the dashboard.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut fx = vec![Effect::Load(Request::Domains)];
        fx.extend(self.load_roles());
        fx.extend(self.load(ScreenId::Dashboard));
        fx
    }

    pub fn busy(&self) -> bool {
        self.writing > 0
            || self.dash_loading
            || PAGED
                .iter()
                .any(|s| self.list(*s).is_some_and(|l| l.loading()))
            || self.roles.loading
            || self.operators.loading
            || self.signing.loading
            || self.apps.loading
    }

    fn domain_id(&self) -> Option<String> {
        self.domain.as_ref().map(|d| d.id.clone())
    }

    fn view(&self) -> i64 {
        list_rows(self.size.1)
    }

    pub fn toast(&mut self, text: impl Into<String>) {
        let text = text.into();
        // Four seconds, and a second more for every 20 characters past a row's worth:
        // a long result stays long enough to be read.
        let extra = (text.chars().count() as u64).saturating_sub(70);
        self.toast = Some(Toast {
            text,
            until: self.tick + TOAST_TICKS + extra,
        });
    }

    /// A write failed: the form it came from comes back with the reason, if that
    /// write was the only one under way and nothing else has been opened since;
    /// else the reason pops up.
    fn refused(&mut self, e: String) -> Vec<Effect> {
        match self.resubmit.take() {
            Some((kind, mut form)) if self.writing == 0 && self.overlay.is_none() => {
                form.failed = Some(e);
                self.overlay = Some(Overlay::Form { kind, form });
            }
            _ => self.fail(e),
        }
        Vec::new()
    }

    /// The one path by which errors reach the user.
    pub fn fail(&mut self, msg: impl Into<String>) {
        self.overlay = Some(Overlay::Error(msg.into()));
    }

    fn page(&self, screen: ScreenId, spec: Option<PageSpec>) -> Vec<Effect> {
        let Some(spec) = spec else {
            return Vec::new();
        };
        let domain = self.domain_id();
        if spec.count && spec.pos == Pos::Top {
            // The first page shows at once; its count follows when it is ready.
            let page = PageSpec {
                count: false,
                ..spec.clone()
            };
            return vec![
                Effect::Load(Request::Page {
                    screen,
                    spec: page,
                    domain: domain.clone(),
                }),
                Effect::Load(Request::Count {
                    screen,
                    spec,
                    domain,
                }),
            ];
        }
        vec![Effect::Load(Request::Page {
            screen,
            spec,
            domain,
        })]
    }

    fn load_roles(&mut self) -> Vec<Effect> {
        let generation = self.roles.restart();
        vec![Effect::Load(Request::Roles { generation })]
    }

    /// (Re)loads a screen's data from the start.
    pub fn load(&mut self, screen: ScreenId) -> Vec<Effect> {
        match screen {
            ScreenId::Dashboard => {
                self.dash_generation += 1;
                self.dash_loading = true;
                vec![Effect::Load(Request::Dashboard {
                    generation: self.dash_generation,
                    domain: self.domain_id(),
                })]
            }
            ScreenId::Users
            | ScreenId::Stations
            | ScreenId::Tokens
            | ScreenId::Audit
            | ScreenId::Keys => {
                let s = self.list_mut(screen).and_then(|l| l.restart());
                self.page(screen, s)
            }
            ScreenId::Roles => self.load_roles(),
            ScreenId::Operators => {
                let generation = self.operators.restart();
                vec![Effect::Load(Request::Operators { generation })]
            }
            ScreenId::Apps => {
                let generation = self.apps.restart();
                vec![Effect::Load(Request::Apps { generation })]
            }
            ScreenId::SigningKeys => {
                let generation = self.signing.restart();
                vec![Effect::Load(Request::SigningKeys { generation })]
            }
        }
    }

    /// The whole list of a screen that `/` filters, if it has one.
    fn whole(&self, s: ScreenId) -> Option<&dyn WholeList> {
        Some(match s {
            ScreenId::Apps => &self.apps,
            ScreenId::SigningKeys => &self.signing,
            ScreenId::Operators => &self.operators,
            _ => return None,
        })
    }

    fn whole_mut(&mut self, s: ScreenId) -> Option<&mut dyn WholeList> {
        Some(match s {
            ScreenId::Apps => &mut self.apps,
            ScreenId::SigningKeys => &mut self.signing,
            ScreenId::Operators => &mut self.operators,
            _ => return None,
        })
    }

    /// Whether the current screen's filter (paged or whole list) is being typed.
    fn filtering(&self) -> bool {
        let s = self.screen;
        self.list(s).is_some_and(|l| l.editing()) || self.whole(s).is_some_and(|w| w.editing())
    }

    /// The keyset-paged list of a screen, if it has one.
    fn list(&self, s: ScreenId) -> Option<&dyn ListOps> {
        Some(match s {
            ScreenId::Users => &self.users,
            ScreenId::Stations => &self.stations,
            ScreenId::Tokens => &self.tokens,
            ScreenId::Audit => &self.audit,
            ScreenId::Keys => &self.keys,
            _ => return None,
        })
    }

    fn list_mut(&mut self, s: ScreenId) -> Option<&mut dyn ListOps> {
        Some(match s {
            ScreenId::Users => &mut self.users,
            ScreenId::Stations => &mut self.stations,
            ScreenId::Tokens => &mut self.tokens,
            ScreenId::Audit => &mut self.audit,
            ScreenId::Keys => &mut self.keys,
            _ => return None,
        })
    }

    fn loaded(&self, screen: ScreenId) -> bool {
        match screen {
            ScreenId::Dashboard => self.dash.is_some() || self.dash_loading,
            ScreenId::Users
            | ScreenId::Stations
            | ScreenId::Tokens
            | ScreenId::Audit
            | ScreenId::Keys => self.list(screen).is_some_and(|l| l.loaded() || l.loading()),
            ScreenId::Roles => self.roles.loaded || self.roles.loading,
            ScreenId::Operators => self.operators.loaded || self.operators.loading,
            ScreenId::SigningKeys => self.signing.loaded || self.signing.loading,
            ScreenId::Apps => self.apps.loaded || self.apps.loading,
        }
    }

    pub fn switch(&mut self, screen: ScreenId) -> Vec<Effect> {
        self.screen = screen;
        if self.loaded(screen) {
            self.detail_effect()
        } else {
            self.load(screen)
        }
    }

    /// Everything again: after a change, on Ctrl-R, or when the domain filter changes.
    fn reload_all(&mut self) -> Vec<Effect> {
        let mut fx = vec![Effect::Load(Request::Domains)];
        for s in [
            ScreenId::Users,
            ScreenId::Stations,
            ScreenId::Tokens,
            ScreenId::Audit,
            ScreenId::Operators,
            ScreenId::Keys,
            ScreenId::SigningKeys,
            ScreenId::Apps,
        ] {
            if s == self.screen {
                fx.extend(self.load(s));
            } else {
                self.forget(s);
            }
        }
        if self.screen != ScreenId::Roles {
            fx.extend(self.load_roles());
        } else {
            fx.extend(self.load(ScreenId::Roles));
        }
        fx.extend(self.load(ScreenId::Dashboard));
        self.detail = None;
        self.detail_wanted = None;
        fx.extend(self.detail_effect());
        fx
    }

    /// Marks a screen stale so it reloads when shown.
    fn forget(&mut self, s: ScreenId) {
        match s {
            ScreenId::Users
            | ScreenId::Stations
            | ScreenId::Tokens
            | ScreenId::Audit
            | ScreenId::Keys => {
                if let Some(l) = self.list_mut(s) {
                    l.forget();
                }
            }
            ScreenId::Operators => {
                self.operators.loaded = false;
                self.operators.generation += 1;
                self.operators.loading = false;
            }
            ScreenId::Apps => {
                self.apps.loaded = false;
                self.apps.generation += 1;
                self.apps.loading = false;
            }
            ScreenId::SigningKeys => {
                self.signing.loaded = false;
                self.signing.generation += 1;
                self.signing.loading = false;
            }
            _ => {}
        }
    }

    /// Asks for the selected user's detail when it is not the one shown.
    fn detail_effect(&mut self) -> Vec<Effect> {
        if self.screen != ScreenId::Users {
            return Vec::new();
        }
        let Some(id) = self.users.selected().map(|u| u.id.clone()) else {
            return Vec::new();
        };
        if self.detail_wanted.as_deref() == Some(&id) {
            return Vec::new();
        }
        self.detail_wanted = Some(id.clone());
        vec![Effect::Load(Request::UserDetail { id })]
    }

    /// The detail of the selected user, if it has arrived.
    pub fn selected_detail(&self) -> Option<&UserDetail> {
        let sel = self.users.selected()?;
        self.detail.as_ref().filter(|d| d.user.id == sel.id)
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Key(k) => {
                if k.kind == KeyEventKind::Release {
                    return Vec::new();
                }
                self.key(k)
            }
            Action::Paste(s) => self.paste(&s),
            Action::Resize(w, h) => {
                self.size = (w, h);
                let v = self.view();
                for s in PAGED {
                    if let Some(l) = self.list_mut(s) {
                        l.scroll(v);
                    }
                }
                Vec::new()
            }
            Action::Tick { now } => {
                self.tick += 1;
                self.now = now;
                if self.toast.as_ref().is_some_and(|t| t.until <= self.tick) {
                    self.toast = None;
                }
                let t = self.tick;
                let mut fx = Vec::new();
                for s in PAGED {
                    let spec = self.list_mut(s).and_then(|l| l.tick(t));
                    fx.extend(self.page(s, spec));
                }
                if t.is_multiple_of(DASH_REFRESH_TICKS)
                    && self.screen == ScreenId::Dashboard
                    && self.overlay.is_none()
                    && !self.dash_loading
                    && self.writing == 0
                {
                    fx.extend(self.load(ScreenId::Dashboard));
                }
                fx
            }
            Action::Loaded(l) => self.loaded_data(l),
            Action::Issued(r) => {
                self.writing = self.writing.saturating_sub(1);
                match r {
                    Ok(rv) => {
                        self.resubmit = None;
                        self.overlay = Some(Overlay::Reveal(rv));
                        self.reload_all()
                    }
                    Err(e) => self.refused(e),
                }
            }
            Action::Wrote(r) => {
                self.writing = self.writing.saturating_sub(1);
                match r {
                    Ok(msg) => {
                        self.resubmit = None;
                        if msg.contains('\n') && self.overlay.is_none() {
                            self.overlay = Some(Overlay::Notice(msg));
                        } else {
                            self.toast(msg);
                        }
                        self.reload_all()
                    }
                    Err(e) => self.refused(e),
                }
            }
        }
    }

    fn loaded_data(&mut self, l: Loaded) -> Vec<Effect> {
        let view = self.view();
        match l {
            Loaded::Dashboard { generation, result } => {
                if generation != self.dash_generation {
                    return Vec::new();
                }
                self.dash_loading = false;
                match result {
                    Ok(d) => {
                        // Each selection stays on its row when others arrive or go.
                        let old = self.dash.as_ref();
                        self.dash_sel = follow(
                            old.map(|o| &o.pending_users[..]),
                            self.dash_sel,
                            &d.pending_users,
                            |a, b| a.id == b.id,
                        );
                        self.dash_exp_sel = follow(
                            old.map(|o| &o.expiring[..]),
                            self.dash_exp_sel,
                            &d.expiring,
                            |a, b| a.jti == b.jti,
                        );
                        self.dash = Some(*d);
                    }
                    Err(e) => self.fail(e),
                }
                Vec::new()
            }
            Loaded::Count {
                screen,
                generation,
                result,
            } => {
                let total = match result {
                    Ok(t) => t,
                    Err(e) => {
                        self.fail(e);
                        return Vec::new();
                    }
                };
                if let Some(l) = self.list_mut(screen) {
                    l.counted(generation, total);
                }
                Vec::new()
            }
            Loaded::Page {
                screen,
                generation,
                pos,
                result,
            } => {
                let (rows, total) = match result {
                    Ok(r) => r,
                    Err(e) => {
                        if let Some(l) = self.list_mut(screen) {
                            l.failed(&pos);
                        }
                        self.fail(e);
                        return Vec::new();
                    }
                };
                match rows {
                    Rows::Users(r) => {
                        if self.users.apply(generation, pos, r, total, view) {
                            return self.detail_effect();
                        }
                    }
                    Rows::Stations(r) => {
                        self.stations.apply(generation, pos, r, total, view);
                    }
                    Rows::Tokens(r) => {
                        self.tokens.apply(generation, pos, r, total, view);
                    }
                    Rows::Audit(r) => {
                        self.audit.apply(generation, pos, r, total, view);
                    }
                    Rows::Keys(r) => {
                        self.keys.apply(generation, pos, r, total, view);
                    }
                }
                Vec::new()
            }
            Loaded::UserDetail { id, result } => {
                if self.open_user.as_deref() == Some(&id) {
                    self.open_user = None;
                    match result {
                        Ok(Some(d)) => {
                            let email = d.user.email.clone();
                            return self.set_filter(ScreenId::Users, &email);
                        }
                        Ok(None) => self.fail(format!(
                            "user {id} no longer exists (removed); its tokens stay listed on Tokens (7) until purged"
                        )),
                        Err(e) => self.fail(e),
                    }
                    return Vec::new();
                }
                if self.detail_wanted.as_deref() == Some(&id) {
                    match result {
                        Ok(d) => self.detail = d.map(|d| *d),
                        Err(e) => self.toast(e),
                    }
                }
                Vec::new()
            }
            Loaded::Roles { generation, result } => {
                match result {
                    Ok((roles, scopes)) => {
                        if self.roles.apply(generation, roles) {
                            self.scope_sel = self.scope_sel.min(scopes.len().saturating_sub(1));
                            self.scopes = scopes;
                        }
                    }
                    Err(e) => {
                        self.roles.loading = false;
                        self.fail(e)
                    }
                }
                Vec::new()
            }
            Loaded::Introspect { jwt, result } => {
                if let Some(Overlay::Inspect(ins)) = &mut self.overlay
                    && ins.asked.as_deref() == Some(jwt.as_str())
                {
                    ins.result = Some(result.map(|b| *b));
                }
                Vec::new()
            }
            Loaded::Apps { generation, result } => {
                match result {
                    Ok((apps, consents, counts)) => {
                        if self.apps.apply(generation, apps) {
                            self.consents = consents;
                            self.consent_counts = counts.into_iter().collect();
                        }
                    }
                    Err(e) => {
                        self.apps.loading = false;
                        self.fail(e)
                    }
                }
                Vec::new()
            }
            Loaded::SigningKeys { generation, result } => {
                match result {
                    Ok(ks) => {
                        self.signing.apply(generation, ks);
                    }
                    Err(e) => {
                        self.signing.loading = false;
                        self.fail(e)
                    }
                }
                Vec::new()
            }
            Loaded::KeyLiveTokens { client_id, result } => {
                match result {
                    Ok(n) => self.confirm_key_rm(&client_id, n),
                    Err(e) => self.fail(e),
                }
                Vec::new()
            }
            Loaded::Narrowing { confirm, result } => self.confirm_narrowing(*confirm, result),
            Loaded::AuditVerify(result) => {
                match result {
                    Ok(r) if r.ok => self.toast(format!(
                        "audit log intact: {} event(s), every link verifies",
                        super::fmt::thousands(r.events)
                    )),
                    Ok(r) => self.fail(format!(
                        "the audit log's hash chain is broken at event #{} (seq {}): {}",
                        r.first_bad_position.unwrap_or(0),
                        r.first_bad_seq.unwrap_or(0),
                        r.problem.unwrap_or_default()
                    )),
                    Err(e) => self.fail(e),
                }
                Vec::new()
            }
            Loaded::Settings(result) => {
                match result {
                    Ok(rows) if self.overlay.is_none() => {
                        self.overlay = Some(Overlay::Settings { rows, sel: 0 });
                    }
                    Ok(_) => {}
                    Err(e) => self.fail(e),
                }
                Vec::new()
            }
            Loaded::Operators { generation, result } => {
                match result {
                    Ok(ops) => {
                        self.operators.apply(generation, ops);
                    }
                    Err(e) => {
                        self.operators.loading = false;
                        self.fail(e)
                    }
                }
                Vec::new()
            }
            Loaded::Domains(result) => {
                match result {
                    Ok(ds) => {
                        if let Some(cur) = &self.domain
                            && !ds.iter().any(|d| d.id == cur.id)
                        {
                            self.domain = None;
                        }
                        self.domains = ds;
                    }
                    Err(e) => self.fail(e),
                }
                Vec::new()
            }
        }
    }

    fn paste(&mut self, s: &str) -> Vec<Effect> {
        if let Some(Overlay::Inspect(ins)) = &mut self.overlay {
            // A pasted token replaces the input and is inspected at once.
            let clean: String = s.chars().filter(|c| !c.is_control()).collect();
            ins.input = clean.trim().into();
            ins.editing = true;
            return self.inspect_submit();
        }
        let clean = s.trim();
        if !self.takes_text() {
            // Nothing here takes text, so the paste is never typed as keys (its letters
            // would run commands, and a `y` confirm them). A token opens the inspector;
            // on a list, the text becomes its filter (`/` and the text); else it is
            // left alone.
            let token = clean.split('.').count() == 3
                && clean.len() > 20
                && clean
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if self.overlay.is_none() && token {
                return self.inspect(clean);
            }
            let screen = self.screen;
            if self.overlay.is_none() && !clean.is_empty() && self.list(screen).is_some() {
                if let Some(l) = self.list_mut(screen) {
                    l.set_editing();
                }
            } else if self.overlay.is_none() && !clean.is_empty() && self.whole(screen).is_some() {
                if let Some(w) = self.whole_mut(screen) {
                    w.set_editing();
                }
            } else {
                self.toast("pasted text ignored: nothing here takes text");
                return Vec::new();
            }
        }
        // Typed in, character by character (each validates or filters as typing does),
        // up to what any field takes: a whole file pasted by mistake would otherwise
        // hold the console for minutes.
        let mut fx = Vec::new();
        let mut chars = s.chars().filter(|c| !c.is_control());
        for c in chars.by_ref().take(PASTE_MAX) {
            fx.extend(self.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
        }
        if chars.next().is_some() {
            self.toast(format!(
                "pasted text cut at {} characters",
                super::fmt::thousands(PASTE_MAX as i64)
            ));
        }
        fx
    }

    /// Whether typed text goes into something: a form's text field, the palette, or
    /// a list's filter being typed.
    fn takes_text(&self) -> bool {
        match &self.overlay {
            Some(Overlay::Form { form, .. }) => form
                .fields
                .get(form.focus)
                .is_some_and(|f| matches!(f.kind, super::widgets::form::FieldKind::Text(_))),
            Some(Overlay::Palette(_)) => true,
            Some(_) => false,
            None => self.filtering(),
        }
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        // Terminal-level keys, whatever is open.
        if k.modifiers.contains(KeyModifiers::CONTROL) {
            match k.code {
                KeyCode::Char('c' | 'C') => self.quit = true,
                KeyCode::Char('z' | 'Z') => self.suspend = true,
                _ => {}
            }
            if self.quit || self.suspend {
                return Vec::new();
            }
        }
        // Too small to draw, the screen shows only how to go on: keys must not act on
        // what cannot be seen. `q` still quits.
        if self.size.0 < super::ui::MIN_W || self.size.1 < super::ui::MIN_H {
            if k.code == KeyCode::Char('q') && self.overlay.is_none() {
                self.quit = true;
            }
            return Vec::new();
        }
        if let Some(ov) = self.overlay.take() {
            return self.overlay_key(ov, k);
        }
        if let Some(fx) = self.filter_key(k) {
            return fx;
        }
        if let KeyCode::Char(c) = k.code
            && k.modifiers.difference(KeyModifiers::SHIFT).is_empty()
            && let Some(id) = ScreenId::by_key(c)
        {
            return self.switch(id);
        }
        let Some(b) = keymap::lookup(self.screen, &k) else {
            // Letters and signs only: Esc, Enter and the arrows pressed out of habit
            // where they do nothing need no note.
            if let KeyCode::Char(_) = k.code
                && let Some(note) = keymap::elsewhere(self.screen, &k)
            {
                self.toast(note);
            }
            return Vec::new();
        };
        if let Some(why) = b.unavailable {
            self.toast(format!("{}: {why}", b.desc));
            return Vec::new();
        }
        if let Some(why) = self.actor.denied(b.need) {
            self.toast(format!("{} is not available: {why}", b.desc));
            return Vec::new();
        }
        self.cmd(b.cmd)
    }

    /// Runs a command after the same permission check as its key binding.
    fn checked(&mut self, screen: ScreenId, cmd: Cmd) -> Vec<Effect> {
        let b = keymap::BINDINGS
            .iter()
            .find(|b| b.cmd == cmd && b.on.covers(screen));
        if let Some(why) = b.and_then(|b| self.actor.denied(b.need)) {
            self.fail(format!("not allowed: {why}"));
            return Vec::new();
        }
        let mut fx = self.switch(screen);
        fx.extend(self.cmd(cmd));
        fx
    }

    /// Keys while a list's filter is being typed. `None` = not editing.
    fn filter_key(&mut self, k: KeyEvent) -> Option<Vec<Effect>> {
        let screen = self.screen;
        let tick = self.tick;
        let view = self.view();
        if let Some(w) = self.whole_mut(screen)
            && w.editing()
        {
            w.filter_key(k);
            return Some(Vec::new());
        }
        if !self.list(screen).is_some_and(|l| l.editing()) {
            return None;
        }
        let spec = self
            .list_mut(screen)
            .and_then(|l| l.filter_key(k, tick, view));
        let mut fx = self.page(screen, spec);
        fx.extend(self.detail_effect());
        Some(fx)
    }

    /// Applies a list operation to the current screen's list.
    fn on_list(&mut self, f: impl Fn(&mut dyn ListOps) -> Option<PageSpec>) -> Vec<Effect> {
        let screen = self.screen;
        let spec = self.list_mut(screen).and_then(f);
        let mut fx = self.page(screen, spec);
        fx.extend(self.detail_effect());
        fx
    }

    fn step(&mut self, d: i64) -> Vec<Effect> {
        let view = self.view();
        match self.screen {
            ScreenId::Dashboard => {
                let (n, sel) = match self.dash_pane {
                    0 => (
                        self.dash.as_ref().map_or(0, |d| d.pending_users.len()),
                        &mut self.dash_sel,
                    ),
                    _ => (
                        self.dash.as_ref().map_or(0, |d| d.expiring.len()),
                        &mut self.dash_exp_sel,
                    ),
                };
                if n > 0 {
                    *sel = (*sel as i64 + d).clamp(0, n as i64 - 1) as usize;
                }
                Vec::new()
            }
            ScreenId::Roles => {
                if self.pane == 0 {
                    self.roles.step(d);
                } else {
                    let n = self.scopes.len() as i64;
                    if n > 0 {
                        self.scope_sel = (self.scope_sel as i64 + d).clamp(0, n - 1) as usize;
                    }
                }
                Vec::new()
            }
            ScreenId::Operators => {
                self.operators.step(d);
                Vec::new()
            }
            ScreenId::SigningKeys => {
                self.signing.step(d);
                Vec::new()
            }
            ScreenId::Apps => {
                self.apps.step(d);
                Vec::new()
            }
            _ => self.on_list(|l| l.move_by(d, view)),
        }
    }

    fn cmd(&mut self, cmd: Cmd) -> Vec<Effect> {
        let view = self.view();
        match cmd {
            Cmd::Quit => {
                self.quit = true;
                Vec::new()
            }
            Cmd::Suspend => {
                self.suspend = true;
                Vec::new()
            }
            Cmd::Back => {
                if let Some(fx) = self.clear_filter() {
                    return fx;
                }
                if self.screen == ScreenId::Dashboard {
                    self.quit = true;
                    Vec::new()
                } else {
                    self.switch(ScreenId::Dashboard)
                }
            }
            Cmd::Jump => Vec::new(),
            Cmd::NextScreen | Cmd::PrevScreen => {
                let n = SCREENS.len();
                let i = self.screen.index();
                let j = if cmd == Cmd::NextScreen {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.switch(SCREENS[j].id)
            }
            Cmd::Palette => {
                self.overlay = Some(Overlay::Palette(Palette::default()));
                Vec::new()
            }
            Cmd::Help => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            Cmd::DomainPicker => {
                let sel = self
                    .domain
                    .as_ref()
                    .and_then(|d| self.domains.iter().position(|x| x.id == d.id))
                    .map_or(0, |i| i + 1);
                self.overlay = Some(Overlay::DomainPicker { sel });
                Vec::new()
            }
            Cmd::Reload => self.reload_all(),
            Cmd::Up => self.step(-1),
            Cmd::Down => self.step(1),
            Cmd::PageUp => self.step(-view),
            Cmd::PageDown => self.step(view),
            Cmd::Top => match self.screen {
                ScreenId::Dashboard
                | ScreenId::Roles
                | ScreenId::Operators
                | ScreenId::SigningKeys
                | ScreenId::Apps => self.step(i64::MIN / 2),
                _ => self.on_list(|l| l.top(view)),
            },
            Cmd::Bottom => match self.screen {
                ScreenId::Dashboard
                | ScreenId::Roles
                | ScreenId::Operators
                | ScreenId::SigningKeys
                | ScreenId::Apps => self.step(i64::MAX / 2),
                _ => self.on_list(|l| l.bottom(view)),
            },
            Cmd::Filter => {
                if let Some(w) = self.whole_mut(self.screen) {
                    w.set_editing();
                    return Vec::new();
                }
                self.on_list(|l| {
                    l.set_editing();
                    None
                })
            }
            Cmd::SortNext => {
                let n = self.screen.def().sorts.len().max(1);
                self.on_list(|l| l.next_sort(n))
            }
            Cmd::SortReverse => self.on_list(|l| l.reverse()),
            Cmd::Open => self.open(),
            Cmd::Details => {
                if super::screens::detail(self).is_some_and(|d| !d.is_empty()) {
                    self.overlay = Some(Overlay::Detail { scroll: 0 });
                }
                Vec::new()
            }
            Cmd::New => self.new_form(),
            Cmd::Delete => self.delete(),
            Cmd::ToggleStatus => self.toggle_status(),
            Cmd::ChangeRole => self.change_role(),
            Cmd::PaneLeft | Cmd::PaneRight => {
                let to = usize::from(cmd == Cmd::PaneRight);
                if self.screen == ScreenId::Dashboard {
                    self.dash_pane = to;
                } else {
                    self.pane = to;
                }
                Vec::new()
            }
            Cmd::Grant | Cmd::RevokeScopes if self.screen == ScreenId::Apps => {
                self.consent_form(cmd == Cmd::Grant)
            }
            Cmd::Grant | Cmd::RevokeScopes => self.scopes_form(cmd == Cmd::Grant),
            Cmd::SetDefault => {
                if let Some(r) = self.roles.items.get(self.roles.sel) {
                    if r.default {
                        self.toast(format!("{} is already the default role", r.name));
                    } else {
                        self.overlay = Some(Overlay::Confirm(Confirm {
                            title: format!("Make {} the default role", r.name),
                            lines: vec![
                                format!(
                                    "New sign-ups will get role {} ({}).",
                                    r.name,
                                    r.effective_scopes.join(" ")
                                ),
                                "Existing users keep their roles.".into(),
                            ],
                            op: WriteOp::RoleDefault {
                                role: r.name.clone(),
                            },
                        }));
                    }
                }
                Vec::new()
            }
            Cmd::LoadDemo => {
                // Fake users mixed into real ones cannot be told apart afterwards.
                if let Some(n) = self.dash.as_ref().map(|d| d.users).filter(|n| *n > 0) {
                    self.toast(format!(
                        "demo data is for an empty database, and this one holds {n} user(s); \
                         `keyward demo` on the command line adds it anyway"
                    ));
                    return Vec::new();
                }
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: "Load demo data".into(),
                    lines: vec![
                        format!(
                            "Adds 3 example domains, scopes send_documents/receive_documents, a Partner role and {DEMO_USERS} users with stations and token records."
                        ),
                        "Existing data is kept. Every change is audited.".into(),
                    ],
                    op: WriteOp::Demo { users: DEMO_USERS },
                }));
                Vec::new()
            }
            Cmd::NewKey if self.screen == ScreenId::Keys => self.new_key_form(),
            Cmd::RemoveUser => self.remove_user(),
            Cmd::Import => self.import_form(),
            Cmd::RotateAffiliate => self.rotate_affiliate(),
            Cmd::Purge => self.purge_form(),
            Cmd::MasterKey => {
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: "Rotate the master key".into(),
                    lines: vec![
                        "Generates a new master key and re-encrypts every private signing key and"
                            .into(),
                        "keyed-hash key under it, in one transaction; the file is replaced after."
                            .into(),
                        "Back up the new key file: without it the private keys cannot be read."
                            .into(),
                    ],
                    op: WriteOp::MasterKeyRotate,
                }));
                Vec::new()
            }
            Cmd::Edit => match self.screen {
                ScreenId::Users => self.edit_user(),
                ScreenId::Stations => self.edit_station(),
                _ => self.edit_scope(),
            },
            Cmd::VerifyAudit => {
                self.toast("verifying the audit log's hash chain…");
                vec![Effect::Load(Request::AuditVerify)]
            }
            Cmd::EnableApi | Cmd::NewKey => self.enable_api(false),
            Cmd::Mint => self.enable_api(true),
            Cmd::Revoke => self.revoke_token(),
            Cmd::Inspect => self.inspect(""),
        }
    }

    fn clear_filter(&mut self) -> Option<Vec<Effect>> {
        let screen = self.screen;
        if let Some(w) = self.whole_mut(screen) {
            return w.clear_filter().then(Vec::new);
        }
        let spec = self.list_mut(screen)?.clear_filter()?;
        Some(self.page(screen, spec))
    }

    /// Sets a list's filter and reloads it (palette, Enter on a sign-up).
    pub fn set_filter(&mut self, screen: ScreenId, text: &str) -> Vec<Effect> {
        self.screen = screen;
        let spec = self.list_mut(screen).and_then(|l| l.set_filter(text));
        self.page(screen, spec)
    }

    /// Enter on a waiting sign-up: the support flow; on an expiring token: that token
    /// on Tokens (to inspect, or to see its user's others).
    fn open(&mut self) -> Vec<Effect> {
        if self.screen != ScreenId::Dashboard {
            return Vec::new();
        }
        if self.dash_pane == 1 {
            let jti = self
                .dash
                .as_ref()
                .and_then(|d| d.expiring.get(self.dash_exp_sel).map(|t| t.jti.clone()));
            return jti.map_or_else(Vec::new, |j| self.set_filter(ScreenId::Tokens, &j));
        }
        if self.actor.require(Need::Support).is_err() {
            let email = self.support_target().map(|u| u.email.clone());
            return email.map_or_else(Vec::new, |e| self.set_filter(ScreenId::Users, &e));
        }
        self.enable_api(false)
    }

    /// The user the support flow is about: the selected sign-up on the Dashboard,
    /// the selected user on Users.
    fn support_target(&self) -> Option<&UserRow> {
        match self.screen {
            ScreenId::Dashboard if self.dash_pane == 0 => self
                .dash
                .as_ref()
                .and_then(|d| d.pending_users.get(self.dash_sel)),
            ScreenId::Users => self.users.selected(),
            _ => None,
        }
    }

    /// "Enable API access": key or token, scopes limited to the role's, expiry.
    fn enable_api(&mut self, token: bool) -> Vec<Effect> {
        let Some(u) = self.support_target() else {
            return Vec::new();
        };
        let role = self.roles.items.iter().find(|r| r.name == u.role);
        let allowed: Vec<String> = role.map(|r| r.effective_scopes.clone()).unwrap_or_default();
        let options: Vec<(String, bool)> = allowed.iter().map(|s| (s.clone(), true)).collect();
        let note = if allowed.is_empty() {
            format!("role {} allows no scope", u.role)
        } else {
            format!("role {} allows: {}", u.role, allowed.join(" "))
        };
        let mut form = Form::new(
            format!("Enable API access · {}", super::fmt::safe(&u.email)),
            vec![
                Field::choice(
                    "issue",
                    vec!["API key".into(), "token".into()],
                    usize::from(token),
                ),
                Field::checks("scopes", options).with_note(note),
                Field::text("expires", if token { "" } else { KEY_EXPIRY })
                    .with_note("e.g. 90d or 1h · empty = default"),
            ],
        );
        form.intro = Some("Issue an API key (client id + secret) or a token".into());
        let kind = FormKind::EnableApi {
            user_id: u.id.clone(),
            email: u.email.clone(),
            domain: u.domain.clone(),
        };
        self.overlay = Some(Overlay::Form { kind, form });
        Vec::new()
    }

    /// A domain choice preset to the domain filter, or (none yet) the reason as an error.
    fn domain_field(&mut self) -> Option<Field> {
        let names = self.domain_names();
        if names.is_empty() {
            self.fail("there is no domain yet: create one on the Dashboard with n");
            return None;
        }
        let sel = self
            .domain
            .as_ref()
            .and_then(|d| names.iter().position(|n| *n == d.name))
            .unwrap_or(0);
        Some(Field::choice("domain", names, sel))
    }

    /// The domain of an existing user to look up: with every domain shown, first "the
    /// user's" (found by the email alone, as `--domain` left out does), so an address
    /// is not looked for in whichever domain sorts first.
    fn lookup_domain_field(&mut self) -> Option<Field> {
        let mut f = self.domain_field()?;
        if self.domain.is_none()
            && let super::widgets::form::FieldKind::Choice { options, sel } = &mut f.kind
        {
            options.insert(0, USERS_DOMAIN.into());
            *sel = 0;
        }
        Some(f)
    }

    fn domain_names(&self) -> Vec<String> {
        self.domains.iter().map(|d| d.name.clone()).collect()
    }

    fn new_form(&mut self) -> Vec<Effect> {
        let (kind, form) = match self.screen {
            ScreenId::Dashboard => (
                FormKind::NewDomain,
                Form::new(
                    "New domain",
                    vec![
                        Field::text("domain", "")
                            .with_note("the host the API is published on, e.g. free.example.com"),
                    ],
                ),
            ),
            ScreenId::Users => {
                let Some(domain) = self.domain_field() else {
                    return Vec::new();
                };
                let roles: Vec<String> = self.roles.items.iter().map(|r| r.name.clone()).collect();
                let rsel = self.roles.items.iter().position(|r| r.default).unwrap_or(0);
                (
                    FormKind::NewUser,
                    Form::new(
                        "New user",
                        vec![
                            Field::text("email", ""),
                            domain,
                            Field::text("name", ""),
                            Field::choice("role", roles, rsel),
                        ],
                    ),
                )
            }
            ScreenId::Stations => (
                FormKind::NewStation,
                Form::new(
                    "New station",
                    vec![
                        Field::text("owner", "").with_note("email of the owning user"),
                        Field::text("name", ""),
                        Field::text("eu vat id", "").with_note("optional"),
                        Field::text("reg. number", "").with_note("optional, with country"),
                        Field::text("country", "").with_note("ISO code, e.g. DE"),
                    ],
                ),
            ),
            ScreenId::Roles if self.pane == 0 => (
                FormKind::NewRole,
                Form::new(
                    "New role",
                    vec![
                        Field::text("name", ""),
                        Field::text("description", ""),
                        Field::checks(
                            "scopes",
                            self.scopes
                                .iter()
                                .map(|s| (s.name.clone(), false))
                                .collect(),
                        ),
                    ],
                ),
            ),
            ScreenId::Roles => (
                FormKind::NewScope,
                Form::new(
                    "New scope",
                    vec![
                        Field::text("name", "").with_note("lowercase, e.g. send_documents"),
                        Field::text("description", ""),
                        Field::checks(
                            "implies",
                            self.scopes
                                .iter()
                                .map(|s| (s.name.clone(), false))
                                .collect(),
                        ),
                    ],
                ),
            ),
            ScreenId::SigningKeys => (
                FormKind::SigningRotate,
                Form::new(
                    "Rotate the signing key",
                    vec![
                        Field::choice(
                            "alg",
                            ["ES256", "EdDSA", "RS256", "HS256"]
                                .map(String::from)
                                .to_vec(),
                            0,
                        )
                        .with_note("HS256: shared secret, never published"),
                    ],
                ),
            ),
            ScreenId::Apps => (
                FormKind::NewApp,
                Form::new(
                    "New developer app",
                    vec![
                        Field::text("name", ""),
                        Field::text("owner", "").with_note("email of the owning user"),
                        Field::text("redirect URIs", "")
                            .with_note("https://… (http only for localhost), space-separated"),
                        Field::checks(
                            "scopes",
                            self.scopes
                                .iter()
                                .map(|s| (s.name.clone(), false))
                                .collect(),
                        )
                        .with_note("none = the owner's role's scopes"),
                    ],
                ),
            ),
            ScreenId::Operators => (
                FormKind::NewOperator,
                Form::new(
                    "New operator",
                    vec![
                        Field::text("account", "").with_note("OS account name"),
                        Field::choice(
                            "role",
                            vec!["viewer".into(), "support".into(), "admin".into()],
                            0,
                        ),
                        Field::checks(
                            "domains",
                            self.domains
                                .iter()
                                .map(|d| (d.name.clone(), false))
                                .collect(),
                        )
                        .with_note("none = every domain"),
                    ],
                ),
            ),
            _ => return Vec::new(),
        };
        self.overlay = Some(Overlay::Form { kind, form });
        Vec::new()
    }

    /// A new API key for any user (the Users screen's `a` does it for the selection).
    fn new_key_form(&mut self) -> Vec<Effect> {
        let Some(domain) = self.lookup_domain_field() else {
            return Vec::new();
        };
        let form = Form::new(
            "New API key",
            vec![
                Field::text("user", "").with_note("email of the user the key acts for"),
                domain,
                Field::text("name", "api key"),
                Field::text("scopes", "").with_note("space-separated · empty = the role's"),
                Field::text("expires", "90d").with_note("e.g. 90d · empty = never"),
                Field::choice(
                    "refresh",
                    vec!["with refresh tokens".into(), "without".into()],
                    0,
                ),
                Field::choice(
                    "limits",
                    vec!["rate limits apply".into(), "exempt (admins)".into()],
                    0,
                ),
            ],
        );
        self.overlay = Some(Overlay::Form {
            kind: FormKind::NewKey,
            form,
        });
        Vec::new()
    }

    /// The selected user (Users screen).
    fn selected_user(&mut self) -> Option<UserRow> {
        let u = self.users.selected().cloned();
        if u.is_none() {
            self.fail("no user selected");
        }
        u
    }

    /// `X`: removing a user takes their email typed out.
    fn remove_user(&mut self) -> Vec<Effect> {
        let Some(u) = self.selected_user() else {
            return Vec::new();
        };
        let live = self
            .detail
            .as_ref()
            .filter(|d| d.user.id == u.id)
            .map(|d| (d.active_tokens, d.keys, d.stations.len()));
        let mut form = Form::new(
            format!("Remove user {}", super::fmt::safe(&u.email)),
            vec![Field::text("confirm", "").with_note("type the email to confirm")],
        );
        form.intro = Some(match live {
            Some((tokens, keys, stations)) => format!(
                "Deletes {stations} station(s), {keys} API key(s) and consents; revokes {tokens} active token(s)."
            ),
            None => "Deletes their stations, API keys and consents; revokes their tokens.".into(),
        });
        self.overlay = Some(Overlay::Form {
            kind: FormKind::UserRm {
                email: u.email.clone(),
                domain: u.domain.clone(),
            },
            form,
        });
        Vec::new()
    }

    /// `A`: a new affiliate id (the old one stops working for lookups).
    fn rotate_affiliate(&mut self) -> Vec<Effect> {
        let Some(u) = self.selected_user() else {
            return Vec::new();
        };
        self.overlay = Some(Overlay::Confirm(Confirm {
            title: format!("New affiliate id for {}", super::fmt::safe(&u.email)),
            lines: vec![
                format!(
                    "The current id {} stops working for lookups.",
                    u.affiliate_id
                ),
                "Partners who use it must be given the new one.".into(),
            ],
            op: WriteOp::AffiliateRotate {
                email: u.email.clone(),
                domain: u.domain.clone(),
            },
        }));
        Vec::new()
    }

    /// `I` on Users: a CSV file on this host (email,name[,role][,station]).
    fn import_form(&mut self) -> Vec<Effect> {
        let Some(domain) = self.domain_field() else {
            return Vec::new();
        };
        let mut form = Form::new(
            "Import users",
            vec![
                Field::text("file", "").with_note("path of a CSV file on this host"),
                domain,
                Field::choice("mode", vec!["check only".into(), "import".into()], 0),
            ],
        );
        form.intro =
            Some("Columns email,name[,role][,station]; bad rows are reported and skipped.".into());
        self.overlay = Some(Overlay::Form {
            kind: FormKind::Import,
            form,
        });
        Vec::new()
    }

    /// `P` on Tokens: delete records of tokens expired longer ago than a retention.
    fn purge_form(&mut self) -> Vec<Effect> {
        let mut form =
            Form::new(
                "Purge expired token records",
                vec![Field::text("expired before", "30d").with_note(
                    "a duration such as 30d: records that expired longer ago are deleted",
                )],
            );
        form.intro =
            Some("Revoked and expired records older than this are deleted for good.".into());
        self.overlay = Some(Overlay::Form {
            kind: FormKind::Purge,
            form,
        });
        Vec::new()
    }

    /// `e` on the scopes pane: description and implied scopes.
    /// `e` on Users: the display name (the email is the account and stays).
    fn edit_user(&mut self) -> Vec<Effect> {
        let Some(u) = self.users.selected().cloned() else {
            return Vec::new();
        };
        let form = Form::new(
            format!("Rename {}", super::fmt::safe(&u.email)),
            vec![Field::text("name", &u.name).with_note("the display name; empty clears it")],
        );
        self.overlay = Some(Overlay::Form {
            kind: FormKind::UserRename {
                id: u.id,
                version: u.version,
                email: u.email,
            },
            form,
        });
        Vec::new()
    }

    /// `e` on Stations: the identifiers the consent page recognises the station by.
    fn edit_station(&mut self) -> Vec<Effect> {
        let Some(s) = self.stations.selected().cloned() else {
            return Vec::new();
        };
        let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut form = Form::new(
            format!("Station {}", super::fmt::safe(&s.name)),
            vec![
                Field::text("EU VAT id", &or_empty(&s.eu_vat_id))
                    .with_note("e.g. DE123456789 · empty = none"),
                Field::text("registration", &or_empty(&s.registration_number))
                    .with_note("registration number · empty = none"),
                Field::text("country", &or_empty(&s.country_code))
                    .with_note("ISO 3166-1 code of the registration, e.g. DE"),
            ],
        );
        form.intro = Some(format!(
            "Owner {}; the consent page pre-selects a station by these.",
            super::fmt::safe(&s.user_email)
        ));
        self.overlay = Some(Overlay::Form {
            kind: FormKind::StationEdit { id: s.id },
            form,
        });
        Vec::new()
    }

    fn edit_scope(&mut self) -> Vec<Effect> {
        if self.pane == 0 {
            self.toast("roles change with + and -; press l for the scopes pane to edit a scope");
            return Vec::new();
        }
        let Some(sc) = self.scopes.get(self.scope_sel) else {
            return Vec::new();
        };
        let options = self
            .scopes
            .iter()
            .filter(|o| o.name != sc.name)
            .map(|o| (o.name.clone(), sc.implies.contains(&o.name)))
            .collect();
        let form = Form::new(
            format!("Edit scope {}", sc.name),
            vec![
                Field::text("description", &sc.description),
                Field::checks("implies", options).with_note("holding this scope also grants these"),
            ],
        );
        self.overlay = Some(Overlay::Form {
            kind: FormKind::ScopeEdit {
                name: sc.name.clone(),
            },
            form,
        });
        Vec::new()
    }

    /// Opens a setting of `:config` for editing.
    fn edit_setting(&mut self, row: &SettingRow) {
        let form = Form::new(
            format!("Setting {}", row.key),
            vec![
                Field::text("value", &row.value)
                    .with_note(keyward::service::settings::describe(&row.key)),
            ],
        );
        self.overlay = Some(Overlay::Form {
            kind: FormKind::ConfigSet {
                key: row.key.clone(),
            },
            form,
        });
    }

    /// Grant (`+`) or revoke (`-`) a user's consent to the selected app.
    fn consent_form(&mut self, grant: bool) -> Vec<Effect> {
        let Some(a) = self.apps.items.get(self.apps.sel) else {
            self.fail("no developer app selected: create one with n");
            return Vec::new();
        };
        let app = a.client_id.clone();
        let title = format!("{} · {}", a.name, a.client_id);
        let (kind, form) = if grant {
            let options = a
                .scopes
                .split_whitespace()
                .map(|s| (s.to_string(), true))
                .collect();
            (
                FormKind::ConsentGrant { app },
                Form::new(
                    format!("Grant consent · {}", super::fmt::safe(&title)),
                    vec![
                        Field::text("user", "").with_note("email of the consenting user"),
                        Field::checks("scopes", options).with_note("within the app's scopes"),
                    ],
                ),
            )
        } else {
            let users: Vec<String> = self
                .consents
                .iter()
                .filter(|c| c.app_id == a.id)
                .map(|c| c.user_email.clone())
                .collect();
            let total = self.consent_counts.get(&a.id).copied().unwrap_or(0);
            if total == 0 {
                self.fail(format!("no user has consented to {} yet", a.name));
                return Vec::new();
            }
            // A choice among a few; the email typed out among many.
            let field = if users.len() as i64 == total && users.len() <= 12 {
                Field::choice("user", users, 0)
            } else {
                Field::text("user", "")
                    .with_note(format!("email of one of the {total} consenting users"))
            };
            let mut form = Form::new(
                format!("Revoke consent · {}", super::fmt::safe(&title)),
                vec![field],
            );
            form.intro = Some("Also revokes the tokens the app holds for the user.".into());
            (FormKind::ConsentRevoke { app }, form)
        };
        self.overlay = Some(Overlay::Form { kind, form });
        Vec::new()
    }

    fn scopes_form(&mut self, grant: bool) -> Vec<Effect> {
        let Some(r) = self.roles.items.get(self.roles.sel) else {
            return Vec::new();
        };
        if r.all_scopes {
            self.toast(format!(
                "{} has every scope, including ones added later",
                r.name
            ));
            return Vec::new();
        }
        // The scope highlighted in the scopes pane comes ticked (after a refusal that
        // named it, it is the one to revoke), else a lone choice does.
        let highlighted = self.scopes.get(self.scope_sel).map(|s| s.name.as_str());
        let mut options: Vec<(String, bool)> = if grant {
            self.scopes
                .iter()
                .filter(|s| !r.scopes.contains(&s.name))
                .map(|s| (s.name.clone(), Some(s.name.as_str()) == highlighted))
                .collect()
        } else {
            r.scopes
                .iter()
                .map(|s| (s.clone(), Some(s.as_str()) == highlighted))
                .collect()
        };
        if let [(_, ticked)] = options.as_mut_slice() {
            *ticked = true;
        }
        if options.is_empty() {
            self.toast(if grant {
                "the role already has every scope"
            } else {
                "the role has no scopes to revoke"
            });
            return Vec::new();
        }
        let (title, kind) = if grant {
            (
                format!("Grant scopes to {}", r.name),
                FormKind::Grant {
                    role: r.name.clone(),
                },
            )
        } else {
            (
                format!("Revoke scopes from {}", r.name),
                FormKind::Revoke {
                    role: r.name.clone(),
                    users: r.users,
                },
            )
        };
        self.overlay = Some(Overlay::Form {
            kind,
            form: Form::new(
                title,
                vec![Field::checks("scopes", options).with_note("space toggles")],
            ),
        });
        Vec::new()
    }

    /// Deleting a key: the confirmation says how many live tokens it revokes; when
    /// that is many, the key's name has to be typed.
    fn confirm_key_rm(&mut self, client_id: &str, live: i64) {
        let Some(k) = self.keys.rows.iter().find(|k| k.client_id == client_id) else {
            return;
        };
        let title = format!("Delete API key {}", k.client_id);
        let mut lines = vec![
            format!(
                "{} · owner {} · domain {}",
                super::fmt::safe(&k.name),
                super::fmt::safe(&k.user_email),
                k.domain
            ),
            format!("This revokes {live} active token(s) issued with it."),
            "Clients using it can no longer get tokens.".into(),
        ];
        if live >= BIG_KEY {
            let mut form = Form::new(
                title,
                vec![Field::text("key name", "").with_note("type it to confirm")],
            );
            form.intro = Some(lines.remove(1));
            self.overlay = Some(Overlay::Form {
                kind: FormKind::KeyRm {
                    client_id: k.client_id.clone(),
                    name: k.name.clone(),
                },
                form,
            });
        } else {
            self.overlay = Some(Overlay::Confirm(Confirm {
                title,
                lines,
                op: WriteOp::KeyRm {
                    client_id: k.client_id.clone(),
                },
            }));
        }
    }

    /// A narrowing change, rehearsed: the confirmation says what it takes (SPEC: "says
    /// what else it takes with it"). A user's role change that takes nothing is made
    /// at once; a refusal brings the form back, as a refused write does.
    fn confirm_narrowing(
        &mut self,
        mut c: Confirm,
        result: Result<Rehearsed, String>,
    ) -> Vec<Effect> {
        let found = match result {
            Ok(r) => r,
            Err(e) => return self.refused(e),
        };
        if self.overlay.is_some() {
            // Something else was opened meanwhile: do not put this over it.
            self.resubmit = None;
            return Vec::new();
        }
        let n = match (found, &c.op) {
            (Rehearsed::Narrowing(_, n), _) => n,
            (Rehearsed::Purge(p), WriteOp::TokenPurge { retention, .. })
                if p.tokens == 0 && p.others == 0 =>
            {
                self.resubmit = None;
                self.toast(format!(
                    "nothing expired more than {retention} ago: nothing to purge"
                ));
                return Vec::new();
            }
            (Rehearsed::DomainUse(0, 0), _) => {
                self.resubmit = None;
                self.overlay = Some(Overlay::Confirm(c));
                return Vec::new();
            }
            (Rehearsed::DomainUse(users, stations), WriteOp::DomainRm { name }) => {
                self.resubmit = None;
                self.fail(format!(
                    "{name} still has {users} user(s) and {stations} station(s): only an empty \
                     domain can go (remove them on Users with X first)"
                ));
                return Vec::new();
            }
            (Rehearsed::DomainUse(..), _) => {
                self.resubmit = None;
                return Vec::new();
            }
            (Rehearsed::Purge(p), _) => {
                self.resubmit = None;
                if let WriteOp::TokenPurge { before, .. } = &mut c.op {
                    *before = Some(p.before);
                }
                c.lines.push(format!(
                    "This deletes {} token record(s) and {} refresh token(s) or \
                     authorization code(s).",
                    p.tokens, p.others
                ));
                self.overlay = Some(Overlay::Confirm(c));
                return Vec::new();
            }
        };
        if n.revoked_tokens == 0 && n.trimmed_keys == 0 && matches!(c.op, WriteOp::UserRole { .. })
        {
            self.writing += 1;
            return vec![Effect::Write(c.op)];
        }
        self.resubmit = None;
        c.lines.push(format!(
            "This revokes {} active token(s) and trims {} API key(s), in the same transaction.",
            n.revoked_tokens, n.trimmed_keys
        ));
        self.overlay = Some(Overlay::Confirm(c));
        Vec::new()
    }

    /// Opens the token inspector, inspecting `jwt` at once when given.
    fn inspect(&mut self, jwt: &str) -> Vec<Effect> {
        self.overlay = Some(Overlay::Inspect(Box::new(Inspector {
            input: jwt.trim().into(),
            editing: true,
            asked: None,
            result: None,
        })));
        if jwt.trim().is_empty() {
            Vec::new()
        } else {
            self.inspect_submit()
        }
    }

    fn inspect_submit(&mut self) -> Vec<Effect> {
        let Some(Overlay::Inspect(ins)) = &mut self.overlay else {
            return Vec::new();
        };
        let jwt = ins.input.value().trim().to_string();
        if jwt.is_empty() {
            return Vec::new();
        }
        ins.editing = false;
        ins.asked = Some(jwt.clone());
        ins.result = None;
        vec![Effect::Load(Request::Introspect { jwt })]
    }

    fn inspector_key(&mut self, mut ins: Box<Inspector>, k: KeyEvent) -> Vec<Effect> {
        if ins.editing {
            match k.code {
                KeyCode::Esc => return Vec::new(),
                KeyCode::Enter => {
                    self.overlay = Some(Overlay::Inspect(ins));
                    return self.inspect_submit();
                }
                _ => {
                    ins.input.handle_event(&Event::Key(k));
                }
            }
            self.overlay = Some(Overlay::Inspect(ins));
            return Vec::new();
        }
        match k.code {
            KeyCode::Esc | KeyCode::Char('q') => Vec::new(),
            KeyCode::Char('e') | KeyCode::Char('/') => {
                // A new token: the old verdict goes with the old token.
                ins.editing = true;
                ins.input.reset();
                ins.result = None;
                ins.asked = None;
                self.overlay = Some(Overlay::Inspect(ins));
                Vec::new()
            }
            KeyCode::Char('u') => match ins.user() {
                Some(sub) if sub.contains('@') => self.set_filter(ScreenId::Users, &sub),
                Some(sub) => {
                    self.open_user = Some(sub.clone());
                    vec![Effect::Load(Request::UserDetail { id: sub })]
                }
                None => {
                    self.toast("this token names no user: nothing to open");
                    self.overlay = Some(Overlay::Inspect(ins));
                    Vec::new()
                }
            },
            KeyCode::Char('k') => {
                let cid = ins.client();
                use keyward::service::tokens::{CONSOLE_CLIENT, LOGIN_CLIENT};
                match cid {
                    // Minted by an operator, or from a sign-in: no key to show.
                    Some(c) if c == CONSOLE_CLIENT || c == LOGIN_CLIENT => {
                        self.toast(format!(
                            "{c} is not an API key: {}",
                            if c == CONSOLE_CLIENT {
                                "the token was minted by an operator (console or CLI)"
                            } else {
                                "the token came from a user's sign-in"
                            }
                        ));
                        self.overlay = Some(Overlay::Inspect(ins));
                        Vec::new()
                    }
                    Some(c) if c.starts_with("kwapp_") => {
                        if let Some(i) = self.apps.items.iter().position(|a| a.client_id == c) {
                            self.apps.sel = i;
                        }
                        self.switch(ScreenId::Apps)
                    }
                    Some(c) => self.set_filter(ScreenId::Keys, &c),
                    None => {
                        self.toast("this token names no client: nothing to open");
                        self.overlay = Some(Overlay::Inspect(ins));
                        Vec::new()
                    }
                }
            }
            KeyCode::Char('r') => {
                let rec = ins.answer().and_then(|i| i.record.clone());
                match rec {
                    Some(r)
                        if r.revoked_at.is_none() && self.actor.require(Need::Support).is_ok() =>
                    {
                        let mut form = Form::new(
                            format!("Revoke token {}", r.jti),
                            vec![
                                Field::text("reason", "")
                                    .with_note("optional, kept in the audit log"),
                            ],
                        );
                        form.intro = Some("It stops working at once.".into());
                        // Behind the form, Tokens shows this token (not whatever row
                        // was highlighted there), and the result lands on it.
                        let fx = self.set_filter(ScreenId::Tokens, &r.jti);
                        self.overlay = Some(Overlay::Form {
                            kind: FormKind::TokenRevoke { jti: r.jti },
                            form,
                        });
                        return fx;
                    }
                    Some(r) if r.revoked_at.is_some() => {
                        self.toast("already revoked");
                        self.overlay = Some(Overlay::Inspect(ins));
                    }
                    Some(_) => {
                        let why = self.disabled(Need::Support, None).unwrap_or_default();
                        self.toast(why);
                        self.overlay = Some(Overlay::Inspect(ins));
                    }
                    None => {
                        self.toast("no record of this token here: nothing to revoke");
                        self.overlay = Some(Overlay::Inspect(ins));
                    }
                }
                Vec::new()
            }
            _ => {
                self.overlay = Some(Overlay::Inspect(ins));
                Vec::new()
            }
        }
    }

    /// `r` on Tokens: revoke the selected token, with an optional reason.
    fn revoke_token(&mut self) -> Vec<Effect> {
        let Some(t) = self.tokens.selected() else {
            return Vec::new();
        };
        if let Some(at) = t.revoked_at {
            let msg = format!("{} was already revoked {}", t.jti, super::fmt::datetime(at));
            self.toast(msg);
            return Vec::new();
        }
        if t.expires_at <= self.now {
            let msg = format!("{} has already expired", t.jti);
            self.toast(msg);
            return Vec::new();
        }
        let mut form = Form::new(
            format!("Revoke token {}", t.jti),
            vec![Field::text("reason", "").with_note("optional, kept in the audit log")],
        );
        form.intro = Some(format!(
            "{} · scope {} · expires in {}; it stops working at once.",
            super::fmt::safe(&t.user_email),
            super::fmt::safe(&t.scopes),
            super::fmt::span(t.expires_at - self.now)
        ));
        self.overlay = Some(Overlay::Form {
            kind: FormKind::TokenRevoke { jti: t.jti.clone() },
            form,
        });
        Vec::new()
    }

    /// Why the highlighted role or scope cannot be removed whatever the answer to a
    /// confirmation would be (the core's own rule; asking first would waste a key).
    fn never_removable(&self) -> Option<String> {
        use keyward::service::scopes::{role_removal_refused, scope_removal_refused};
        if self.screen != ScreenId::Roles {
            return None;
        }
        let refused = if self.pane == 0 {
            let r = self.roles.items.get(self.roles.sel)?;
            role_removal_refused(&r.name, r.builtin, r.default)
        } else {
            let s = self.scopes.get(self.scope_sel)?;
            scope_removal_refused(&s.name, s.builtin)
        };
        refused.map(super::tasks::msg)
    }

    /// Retiring a signing key: refused for the active one; with live tokens, confirmed
    /// as revoking them.
    fn retire_signing_key(&mut self) {
        let Some(k) = self.signing.items.get(self.signing.sel) else {
            return;
        };
        if k.status == "active" {
            let msg = format!(
                "{} is the active signing key: rotate first (n), then retire it",
                k.kid
            );
            self.fail(msg);
            return;
        }
        let title = format!("Retire signing key {}", k.kid);
        // With live tokens the retirement revokes them (the service refuses it
        // otherwise): the confirmation says so, and Esc is the way to wait instead.
        let lines = if k.live_tokens > 0 {
            vec![
                format!(
                    "{} unexpired token(s) are signed by it: retiring it revokes them, and they \
                     stop working at once.",
                    k.live_tokens
                ),
                "To let them run out instead, press Esc and retire it once they have expired."
                    .into(),
            ]
        } else {
            vec![
                format!("{} ({}) signs no live token.", k.kid, k.alg),
                "It leaves the JWK Set; tokens it signed no longer verify.".into(),
            ]
        };
        self.overlay = Some(Overlay::Confirm(Confirm {
            title,
            lines,
            op: WriteOp::SigningRetire {
                kid: k.kid.clone(),
                revoke_tokens: k.live_tokens > 0,
            },
        }));
    }

    fn delete(&mut self) -> Vec<Effect> {
        if self.screen == ScreenId::Apps {
            if let Some(a) = self.apps.items.get(self.apps.sel) {
                let consents = self.consent_counts.get(&a.id).copied().unwrap_or(0);
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: format!("Remove developer app {}", a.client_id),
                    lines: vec![
                        format!(
                            "{} · owner {} · domain {}",
                            super::fmt::safe(&a.name),
                            super::fmt::safe(&a.owner_email),
                            a.domain
                        ),
                        format!(
                            "Revokes every token issued to it and drops its {consents} consent(s)."
                        ),
                    ],
                    op: WriteOp::AppRm {
                        client_id: a.client_id.clone(),
                    },
                }));
            }
            return Vec::new();
        }
        if self.screen == ScreenId::SigningKeys {
            self.retire_signing_key();
            return Vec::new();
        }
        if self.screen == ScreenId::Keys {
            return match self.keys.selected() {
                Some(k) => vec![Effect::Load(Request::KeyLiveTokens {
                    client_id: k.client_id.clone(),
                })],
                None => Vec::new(),
            };
        }
        if let Some(why) = self.never_removable() {
            self.fail(why);
            return Vec::new();
        }
        let confirm = match self.screen {
            ScreenId::Stations => self.stations.selected().map(|s| Confirm {
                title: format!("Remove station {}", super::fmt::safe(&s.name)),
                lines: vec![
                    format!(
                        "Owner {} · domain {}",
                        super::fmt::safe(&s.user_email),
                        s.domain
                    ),
                    "A user's last station cannot be removed.".into(),
                ],
                op: WriteOp::StationRm {
                    id: s.id.clone(),
                    name: s.name.clone(),
                },
            }),
            ScreenId::Operators => self
                .operators
                .items
                .get(self.operators.sel)
                .map(|o| Confirm {
                    title: format!("Remove operator {}", o.account),
                    lines: vec![format!(
                        "{} ({}) will no longer be able to administer Keyward.",
                        o.account, o.role
                    )],
                    op: WriteOp::OperatorRm {
                        account: o.account.clone(),
                    },
                }),
            ScreenId::Roles if self.pane == 0 => {
                let Some(r) = self.roles.items.get(self.roles.sel) else {
                    return Vec::new();
                };
                let to = self
                    .roles
                    .items
                    .iter()
                    .find(|x| x.default && x.id != r.id)
                    .map(|x| x.name.clone());
                let mut lines = vec![format!("Role {} has {} user(s).", r.name, r.users)];
                let c = |lines| Confirm {
                    title: format!("Remove role {}", r.name),
                    lines,
                    op: WriteOp::RoleRm {
                        role: r.name.clone(),
                        reassign: if r.users > 0 { to.clone() } else { None },
                    },
                };
                match (&to, r.users) {
                    (_, 0) => Some(c(lines)),
                    (Some(t), _) => {
                        // How many tokens and keys go is rehearsed first.
                        lines.push(format!("They move to the default role {t}."));
                        return vec![Effect::Load(Request::Narrowing(Box::new(c(lines))))];
                    }
                    (None, _) => {
                        lines.push("No role is the default: make one the default first, for them to move to.".into());
                        Some(c(lines))
                    }
                }
            }
            ScreenId::Roles => self.scopes.get(self.scope_sel).map(|s| Confirm {
                title: format!("Remove scope {}", s.name),
                lines: vec![
                    format!("{}", super::fmt::safe(&s.description)),
                    "Refused while a role, key or token still uses it.".into(),
                ],
                op: WriteOp::ScopeRm {
                    name: s.name.clone(),
                },
            }),
            _ => None,
        };
        self.overlay = confirm.map(Overlay::Confirm);
        Vec::new()
    }

    fn toggle_status(&mut self) -> Vec<Effect> {
        let Some(u) = self.users.selected() else {
            return Vec::new();
        };
        let disable = u.status == model::UserStatus::Active.as_str();
        let email = super::fmt::safe(&u.email);
        let lines = if disable {
            let tokens = match self.selected_detail() {
                Some(d) => format!("revokes {} active token(s) of this user", d.active_tokens),
                None => "revokes every active token of this user".into(),
            };
            vec![
                format!("{email} can no longer sign in or get tokens;"),
                format!("{tokens}."),
                "Enable again with x; revoked tokens stay revoked.".into(),
            ]
        } else {
            vec![format!("{email} may sign in and get tokens again.")]
        };
        self.overlay = Some(Overlay::Confirm(Confirm {
            title: format!(
                "{} user {email}",
                if disable { "Disable" } else { "Enable" }
            ),
            lines,
            op: WriteOp::UserStatus {
                id: u.id.clone(),
                email: u.email.clone(),
                disable,
            },
        }));
        Vec::new()
    }

    fn change_role(&mut self) -> Vec<Effect> {
        let Some(u) = self.users.selected() else {
            return Vec::new();
        };
        let names: Vec<String> = self.roles.items.iter().map(|r| r.name.clone()).collect();
        let sel = names.iter().position(|n| *n == u.role).unwrap_or(0);
        let mut form = Form::new(
            format!("Role of {}", super::fmt::safe(&u.email)),
            vec![Field::choice("role", names, sel)],
        );
        form.intro = Some(format!("now {} · ←/→ choose · Enter apply", u.role));
        let kind = FormKind::ChangeRole {
            id: u.id.clone(),
            email: u.email.clone(),
        };
        validate(&kind, &mut form, &self.roles.items, false);
        self.overlay = Some(Overlay::Form { kind, form });
        Vec::new()
    }

    /// Keys of the detail pop-up: arrows scroll it; `Esc`, `q`, `Enter` close it; any
    /// other key closes it and does what it does on the screen, so `r` on a token's
    /// details revokes that token (after the screen's confirmation).
    fn detail_key(&mut self, scroll: usize, k: KeyEvent) -> Vec<Effect> {
        let (w, visible) = super::widgets::detail::popup_size(self.size.0, self.size.1);
        let lines = super::screens::detail(self).map_or(0, |d| {
            d.full_lines(&self.theme, w.saturating_sub(2) as usize)
                .len()
        });
        let max = super::widgets::detail::max_scroll(lines, visible);
        let page = visible.saturating_sub(1).max(1) as usize;
        let scroll = match k.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace | KeyCode::Char('q') => {
                return Vec::new();
            }
            KeyCode::Down | KeyCode::Char('j') => scroll.min(max) + 1,
            KeyCode::Up | KeyCode::Char('k') => scroll.min(max).saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => scroll.min(max) + page,
            KeyCode::PageUp => scroll.min(max).saturating_sub(page),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => max,
            _ => return self.key(k),
        };
        self.overlay = Some(Overlay::Detail {
            scroll: scroll.min(max),
        });
        Vec::new()
    }

    fn overlay_key(&mut self, ov: Overlay, k: KeyEvent) -> Vec<Effect> {
        match ov {
            Overlay::Help | Overlay::Error(_) | Overlay::Notice(_) => Vec::new(),
            Overlay::Detail { scroll } => self.detail_key(scroll, k),
            Overlay::Inspect(ins) => self.inspector_key(ins, k),
            // Any other key closes it; dropping the overlay wipes the secret.
            Overlay::Reveal(mut rv) => match k.code {
                KeyCode::Char('c') => {
                    rv.copied = true;
                    let secret = rv.secret.clone();
                    self.overlay = Some(Overlay::Reveal(rv));
                    self.toast("secret copied via OSC 52 (if the terminal allows it; tmux may keep a copy)");
                    vec![Effect::Clipboard(secret)]
                }
                _ => Vec::new(),
            },
            Overlay::Confirm(c) => match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.writing += 1;
                    vec![Effect::Write(c.op)]
                }
                KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => Vec::new(),
                _ => {
                    self.overlay = Some(Overlay::Confirm(c));
                    Vec::new()
                }
            },
            Overlay::DomainPicker { mut sel } => {
                let n = self.domains.len() + 1;
                match k.code {
                    KeyCode::Esc | KeyCode::Char('q') => return Vec::new(),
                    KeyCode::Down | KeyCode::Char('j') => sel = (sel + 1).min(n - 1),
                    KeyCode::Up | KeyCode::Char('k') => sel = sel.saturating_sub(1),
                    KeyCode::Char('x') if sel > 0 => {
                        if let Some(why) = self.actor.denied(Need::Global) {
                            self.fail(why);
                            return Vec::new();
                        }
                        // Counted first: a domain with users is refused at once, not
                        // after a `y`.
                        let d = self.domains[sel - 1].clone();
                        let c = Confirm {
                            title: format!("Remove domain {}", d.name),
                            lines: vec!["It has no users or stations: it goes for good.".into()],
                            op: WriteOp::DomainRm { name: d.name },
                        };
                        return vec![Effect::Load(Request::Narrowing(Box::new(c)))];
                    }
                    KeyCode::Enter => {
                        let d = if sel == 0 {
                            None
                        } else {
                            self.domains.get(sel - 1).cloned()
                        };
                        return self.set_domain(d);
                    }
                    _ => {}
                }
                self.overlay = Some(Overlay::DomainPicker { sel });
                Vec::new()
            }
            Overlay::Settings { rows, mut sel } => {
                match k.code {
                    KeyCode::Esc | KeyCode::Char('q') => return Vec::new(),
                    KeyCode::Down | KeyCode::Char('j') => {
                        sel = (sel + 1).min(rows.len().saturating_sub(1))
                    }
                    KeyCode::Up | KeyCode::Char('k') => sel = sel.saturating_sub(1),
                    KeyCode::Enter | KeyCode::Char('e') => {
                        if let Some(why) = self.actor.denied(Need::Global) {
                            self.fail(why);
                            return Vec::new();
                        }
                        if let Some(r) = rows.get(sel) {
                            self.edit_setting(r);
                            return Vec::new();
                        }
                    }
                    _ => {}
                }
                self.overlay = Some(Overlay::Settings { rows, sel });
                Vec::new()
            }
            Overlay::Palette(mut p) => match k.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => match p.chosen() {
                    Some((name, arg)) => self.run_command(name, &arg),
                    None => {
                        self.fail(format!(
                            "no command matches {:?}: `:` opens the list of commands, and typing narrows it",
                            p.input.value()
                        ));
                        Vec::new()
                    }
                },
                KeyCode::Down => {
                    p.sel = (p.sel + 1).min(p.matches().len().saturating_sub(1));
                    self.overlay = Some(Overlay::Palette(p));
                    Vec::new()
                }
                KeyCode::Up => {
                    p.sel = p.sel.saturating_sub(1);
                    self.overlay = Some(Overlay::Palette(p));
                    Vec::new()
                }
                _ => {
                    if k.code == KeyCode::Backspace && p.input.value().is_empty() {
                        return Vec::new();
                    }
                    p.input.handle_event(&Event::Key(k));
                    p.sel = 0;
                    self.overlay = Some(Overlay::Palette(p));
                    Vec::new()
                }
            },
            Overlay::Form { kind, mut form } => match form.key(k) {
                FormEvent::Cancel => Vec::new(),
                FormEvent::Submit => {
                    validate(&kind, &mut form, &self.roles.items, true);
                    if let Some(i) = form.fields.iter().position(|f| f.error.is_some()) {
                        form.focus = i;
                        self.overlay = Some(Overlay::Form { kind, form });
                        return Vec::new();
                    }
                    let effect = match submit(&kind, &form, self.domain.as_ref()) {
                        Submit::Issue(op) => Effect::Issue(op),
                        Submit::IssueApp(op) => Effect::IssueApp(op),
                        Submit::Write(op) => Effect::Write(op),
                        Submit::Confirm(c) => {
                            self.overlay = Some(Overlay::Confirm(c));
                            return Vec::new();
                        }
                        Submit::Narrowing(c) => {
                            // The form comes back if the rehearsal is refused.
                            self.resubmit = Some((kind, form));
                            return vec![Effect::Load(Request::Narrowing(Box::new(c)))];
                        }
                    };
                    self.writing += 1;
                    self.resubmit = Some((kind, form));
                    vec![effect]
                }
                FormEvent::Edited | FormEvent::Moved | FormEvent::Ignored => {
                    if matches!(kind, FormKind::EnableApi { .. }) {
                        follow_issue_kind(&mut form);
                    }
                    validate(&kind, &mut form, &self.roles.items, false);
                    self.overlay = Some(Overlay::Form { kind, form });
                    Vec::new()
                }
            },
        }
    }

    fn set_domain(&mut self, d: Option<DomainRow>) -> Vec<Effect> {
        self.domain = d;
        self.reload_all()
    }

    /// Executes a palette command.
    pub fn run_command(&mut self, name: &str, arg: &str) -> Vec<Effect> {
        match name {
            "dashboard" => self.switch(ScreenId::Dashboard),
            "roles" => self.switch(ScreenId::Roles),
            "operators" => self.switch(ScreenId::Operators),
            "keys" => self.set_filter(ScreenId::Keys, arg),
            "apps" => self.switch(ScreenId::Apps),
            "inspect" => self.inspect(arg),
            "signing-keys" => self.switch(ScreenId::SigningKeys),
            "users" => self.set_filter(ScreenId::Users, arg),
            "stations" => self.set_filter(ScreenId::Stations, arg),
            "tokens" => self.set_filter(ScreenId::Tokens, arg),
            "audit" => self.set_filter(ScreenId::Audit, arg),
            "domain" => {
                if arg.is_empty() {
                    return self.cmd(Cmd::DomainPicker);
                }
                if arg.eq_ignore_ascii_case("all") || arg == "*" {
                    return self.set_domain(None);
                }
                let a = arg.to_lowercase();
                let found = self
                    .domains
                    .iter()
                    .find(|d| d.name == a)
                    .or_else(|| self.domains.iter().find(|d| d.name.starts_with(&a)))
                    .cloned();
                match found {
                    Some(d) => self.set_domain(Some(d)),
                    None => {
                        let known = self.domain_names().join(", ");
                        self.fail(format!(
                            "no domain {:?}; domains are: {}",
                            super::fmt::safe(arg),
                            if known.is_empty() {
                                "(none yet)".into()
                            } else {
                                known
                            }
                        ));
                        Vec::new()
                    }
                }
            }
            "config" => vec![Effect::Load(Request::Settings)],
            "verify-audit" => self.checked(ScreenId::Audit, Cmd::VerifyAudit),
            "mint" => self.checked(ScreenId::Users, Cmd::Mint),
            "purge" => self.checked(ScreenId::Tokens, Cmd::Purge),
            "new-user" => self.checked(ScreenId::Users, Cmd::New),
            "new-domain" => self.checked(ScreenId::Dashboard, Cmd::New),
            "demo" => self.checked(ScreenId::Dashboard, Cmd::LoadDemo),
            "reload" => self.reload_all(),
            "help" => self.cmd(Cmd::Help),
            "quit" => {
                self.quit = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Why a binding is disabled for this operator, if it is.
    pub fn disabled(&self, need: Need, unavailable: Option<&'static str>) -> Option<String> {
        unavailable
            .map(str::to_string)
            .or_else(|| self.actor.denied(need))
    }
}

/// List operations the app applies to whichever list is on screen.
/// The screens whose lists are keyset-paged from the database.
const PAGED: [ScreenId; 5] = [
    ScreenId::Users,
    ScreenId::Stations,
    ScreenId::Tokens,
    ScreenId::Audit,
    ScreenId::Keys,
];

pub trait ListOps {
    fn loaded(&self) -> bool;
    fn loading(&self) -> bool;
    fn editing(&self) -> bool;
    fn restart(&mut self) -> Option<PageSpec>;
    fn tick(&mut self, tick: u64) -> Option<PageSpec>;
    fn scroll(&mut self, view: i64);
    fn counted(&mut self, generation: u64, total: i64) -> bool;
    /// Stale: reload when shown again.
    fn forget(&mut self);
    /// A page request failed: it is no longer in flight.
    fn failed(&mut self, pos: &Pos);
    /// A key while the filter is being typed.
    fn filter_key(&mut self, k: KeyEvent, tick: u64, view: i64) -> Option<PageSpec>;
    /// Clears a non-empty filter (None when it was empty).
    fn clear_filter(&mut self) -> Option<Option<PageSpec>>;
    fn set_filter(&mut self, text: &str) -> Option<PageSpec>;
    fn move_by(&mut self, d: i64, view: i64) -> Option<PageSpec>;
    fn top(&mut self, view: i64) -> Option<PageSpec>;
    fn bottom(&mut self, view: i64) -> Option<PageSpec>;
    fn set_editing(&mut self);
    fn next_sort(&mut self, n: usize) -> Option<PageSpec>;
    fn reverse(&mut self) -> Option<PageSpec>;
}

impl<R: ListRow> ListOps for Paged<R> {
    fn loaded(&self) -> bool {
        self.loaded
    }
    fn loading(&self) -> bool {
        Paged::loading(self)
    }
    fn editing(&self) -> bool {
        self.editing
    }
    fn restart(&mut self) -> Option<PageSpec> {
        Paged::restart(self)
    }
    fn tick(&mut self, tick: u64) -> Option<PageSpec> {
        Paged::tick(self, tick)
    }
    fn scroll(&mut self, view: i64) {
        Paged::scroll(self, view)
    }
    fn counted(&mut self, generation: u64, total: i64) -> bool {
        Paged::counted(self, generation, total)
    }
    fn forget(&mut self) {
        self.loaded = false;
        self.generation += 1;
        self.inflight.clear();
    }
    fn failed(&mut self, pos: &Pos) {
        self.inflight.retain(|p| p != pos);
    }
    fn filter_key(&mut self, k: KeyEvent, tick: u64, view: i64) -> Option<PageSpec> {
        match k.code {
            KeyCode::Esc => {
                self.editing = false;
                if self.filter.value().is_empty() {
                    None
                } else {
                    self.filter.reset();
                    Paged::restart(self)
                }
            }
            KeyCode::Enter => {
                self.editing = false;
                None
            }
            KeyCode::Down => Paged::move_by(self, 1, view),
            KeyCode::Up => Paged::move_by(self, -1, view),
            KeyCode::PageDown => Paged::move_by(self, view, view),
            KeyCode::PageUp => Paged::move_by(self, -view, view),
            _ => {
                let before = self.filter.value().to_string();
                self.filter.handle_event(&Event::Key(k));
                if self.filter.value() != before {
                    self.typed(tick, DEBOUNCE_TICKS);
                }
                None
            }
        }
    }
    fn clear_filter(&mut self) -> Option<Option<PageSpec>> {
        if self.filter.value().is_empty() {
            return None;
        }
        self.filter.reset();
        Some(Paged::restart(self))
    }
    fn set_filter(&mut self, text: &str) -> Option<PageSpec> {
        self.filter = text.into();
        Paged::restart(self)
    }
    fn move_by(&mut self, d: i64, view: i64) -> Option<PageSpec> {
        Paged::move_by(self, d, view)
    }
    fn top(&mut self, view: i64) -> Option<PageSpec> {
        Paged::top(self, view)
    }
    fn bottom(&mut self, view: i64) -> Option<PageSpec> {
        Paged::bottom(self, view)
    }
    fn set_editing(&mut self) {
        self.editing = true;
    }
    fn next_sort(&mut self, n: usize) -> Option<PageSpec> {
        self.sort = (self.sort + 1) % n;
        self.restart()
    }
    fn reverse(&mut self) -> Option<PageSpec> {
        self.desc = !self.desc;
        self.restart()
    }
}

enum Submit {
    Write(WriteOp),
    Confirm(Confirm),
    /// Rehearsed first, then confirmed with what it takes (see `confirm_narrowing`).
    Narrowing(Confirm),
    Issue(IssueOp),
    IssueApp(AppOp),
}

/// The domain choice that finds a user by email alone ([`App::lookup_domain_field`]).
const USERS_DOMAIN: &str = "the user's";

/// The expiry an API key is offered with; a token's is empty (the default_ttl setting).
const KEY_EXPIRY: &str = "90d";

/// "Enable API access": the expiry follows the choice of key or token while it holds
/// the other's default, so a token is not issued for a key's 90 days by default.
fn follow_issue_kind(form: &mut Form) {
    // Only a change of the choice itself (an emptied field stays empty).
    if form
        .fields
        .get(form.focus)
        .is_none_or(|f| f.label != "issue")
    {
        return;
    }
    let token = form.value("issue") == "token";
    let (from, to) = if token {
        (KEY_EXPIRY, "")
    } else {
        ("", KEY_EXPIRY)
    };
    if let Some(f) = form.fields.iter_mut().find(|f| f.label == "expires")
        && let super::widgets::form::FieldKind::Text(i) = &mut f.kind
        && i.value().trim() == from
    {
        *i = to.into();
    }
}

/// A space-separated list of scope names: the first bad name, if any.
fn scope_list_error(s: &str) -> Option<String> {
    s.split_whitespace()
        .find_map(|n| err(model::ScopeName::parse(n)))
}

fn opt(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// A field's validation message. For a value that is invalid, what is accepted: the
/// value is on screen just above (and, long, would fill rows if repeated).
fn err<T>(r: keyward::Result<T>) -> Option<String> {
    r.err().map(|e| match e {
        keyward::Error::Invalid { accepted, .. } => accepted,
        e => super::tasks::msg(e),
    })
}

/// Inline validation with the core's own parsers; `all` also flags untouched fields.
pub fn validate(kind: &FormKind, form: &mut Form, roles: &[RoleView], all: bool) {
    let v = |f: &Form, l: &str| f.value(l);
    let mut errors: Vec<(&'static str, Option<String>)> = Vec::new();
    match kind {
        FormKind::NewDomain => {
            errors.push(("domain", err(model::DomainName::parse(&v(form, "domain")))));
        }
        FormKind::NewUser => {
            errors.push(("email", err(model::Email::parse(&v(form, "email")))));
            errors.push(("name", err(model::DisplayName::parse(&v(form, "name")))));
            if v(form, "domain").is_empty() {
                errors.push(("domain", Some("add a domain first".into())));
            }
        }
        FormKind::NewStation => {
            let owner = v(form, "owner");
            errors.push(("owner", err(model::Email::parse(&owner))));
            errors.push((
                "name",
                err(model::DisplayName::parse_required(
                    "station name",
                    &v(form, "name"),
                )),
            ));
            let vat = v(form, "eu vat id");
            errors.push((
                "eu vat id",
                if vat.is_empty() {
                    None
                } else {
                    err(model::EuVatId::parse(&vat))
                },
            ));
            let rn = v(form, "reg. number");
            let cc = v(form, "country");
            errors.push((
                "reg. number",
                if rn.is_empty() {
                    None
                } else {
                    err(model::RegistrationNumber::parse(&rn))
                },
            ));
            errors.push((
                "country",
                if cc.is_empty() && !rn.is_empty() {
                    Some("a registration number needs its country".into())
                } else if !cc.is_empty() && rn.is_empty() {
                    Some("a country goes with a registration number".into())
                } else if cc.is_empty() {
                    None
                } else {
                    err(model::CountryCode::parse(&cc))
                },
            ));
        }
        FormKind::ChangeRole { .. } => {
            let role = v(form, "role");
            if let Some(f) = form.fields.iter_mut().find(|f| f.label == "role") {
                f.note = roles
                    .iter()
                    .find(|r| r.name == role)
                    .map(|r| format!("allows: {}", r.effective_scopes.join(" ")));
            }
        }
        FormKind::NewRole => {
            errors.push(("name", err(model::RoleName::parse(&v(form, "name")))));
            errors.push((
                "description",
                err(model::Description::parse(&v(form, "description"))),
            ));
        }
        FormKind::NewScope => {
            errors.push(("name", err(model::ScopeName::parse(&v(form, "name")))));
            errors.push((
                "description",
                err(model::Description::parse(&v(form, "description"))),
            ));
        }
        FormKind::Grant { .. } | FormKind::Revoke { .. } => {
            let none = form.field("scopes").is_some_and(|f| f.checked().is_empty());
            errors.push((
                "scopes",
                if none {
                    Some("tick at least one scope (space)".into())
                } else {
                    None
                },
            ));
        }
        FormKind::NewOperator => {
            errors.push(("account", err(model::OsAccount::parse(&v(form, "account")))));
        }
        FormKind::TokenRevoke { .. } => {
            let r = v(form, "reason");
            errors.push((
                "reason",
                if r.is_empty() {
                    None
                } else {
                    err(model::Description::parse(&r))
                },
            ));
        }
        FormKind::SigningRotate => {}
        FormKind::KeyRm { name, .. } => {
            errors.push((
                "key name",
                (v(form, "key name") != *name).then(|| format!("type {name:?} to delete it")),
            ));
        }
        FormKind::NewKey => {
            errors.push(("user", err(model::Email::parse(&v(form, "user")))));
            errors.push((
                "name",
                err(model::DisplayName::parse_required(
                    "key name",
                    &v(form, "name"),
                )),
            ));
            errors.push(("scopes", scope_list_error(&v(form, "scopes"))));
            let e = v(form, "expires");
            errors.push((
                "expires",
                if e.is_empty() {
                    None
                } else {
                    err(model::Ttl::parse("expires", &e))
                },
            ));
        }
        FormKind::NewApp => {
            errors.push((
                "name",
                err(model::DisplayName::parse_required(
                    "app name",
                    &v(form, "name"),
                )),
            ));
            errors.push(("owner", err(model::Email::parse(&v(form, "owner")))));
            let uris = v(form, "redirect URIs");
            errors.push((
                "redirect URIs",
                if uris.split_whitespace().next().is_none() {
                    Some("at least one redirect URI".into())
                } else {
                    uris.split_whitespace()
                        .find_map(|u| err(keyward::service::credentials::validate_redirect_uri(u)))
                },
            ));
        }
        FormKind::ConsentGrant { .. } => {
            errors.push(("user", err(model::Email::parse(&v(form, "user")))));
            let none = form.field("scopes").is_some_and(|f| f.checked().is_empty());
            errors.push((
                "scopes",
                none.then(|| "tick at least one scope (space)".into()),
            ));
        }
        FormKind::ConsentRevoke { .. } => {
            if let Some(super::widgets::form::FieldKind::Text(_)) =
                form.field("user").map(|f| &f.kind)
            {
                errors.push(("user", err(model::Email::parse(&v(form, "user")))));
            }
        }
        FormKind::ConfigSet { key } => {
            errors.push((
                "value",
                err(keyward::service::settings::validate(key, &v(form, "value"))),
            ));
        }
        FormKind::UserRm { email, .. } => {
            let typed = v(form, "confirm");
            errors.push((
                "confirm",
                (!typed.trim().eq_ignore_ascii_case(email))
                    .then(|| format!("type {email} to confirm")),
            ));
        }
        FormKind::Import => {
            let f = v(form, "file");
            errors.push((
                "file",
                if f.trim().is_empty() {
                    Some("the path of a CSV file".into())
                } else if !std::path::Path::new(f.trim()).is_file() {
                    Some(format!("no file at {}", super::fmt::safe(f.trim())))
                } else {
                    None
                },
            ));
        }
        FormKind::Purge => {
            errors.push((
                "expired before",
                err(model::Ttl::parse(
                    "expired before",
                    &v(form, "expired before"),
                )),
            ));
        }
        FormKind::ScopeEdit { .. } => {
            errors.push((
                "description",
                err(model::DisplayName::parse(&v(form, "description"))),
            ));
        }
        FormKind::UserRename { .. } => {
            errors.push(("name", err(model::DisplayName::parse(&v(form, "name")))));
        }
        FormKind::StationEdit { .. } => {
            let given = |f: &str| Some(v(form, f)).filter(|x| !x.is_empty());
            errors.push((
                "EU VAT id",
                given("EU VAT id").and_then(|x| err(model::EuVatId::parse(&x))),
            ));
            errors.push((
                "registration",
                given("registration").and_then(|x| err(model::RegistrationNumber::parse(&x))),
            ));
            let country = given("country").and_then(|x| err(model::CountryCode::parse(&x)));
            let paired = given("registration").is_some() == given("country").is_some();
            errors.push((
                "country",
                country.or((!paired).then(|| {
                    "a registration number and its country go together (both or neither)".into()
                })),
            ));
        }
        FormKind::EnableApi { .. } => {
            let none = form.field("scopes").is_some_and(|f| match &f.kind {
                super::widgets::form::FieldKind::Checks { options, .. } => {
                    !options.is_empty() && f.checked().is_empty()
                }
                _ => false,
            });
            errors.push((
                "scopes",
                none.then(|| "tick at least one scope (space)".into()),
            ));
            let e = v(form, "expires");
            errors.push((
                "expires",
                if e.is_empty() {
                    None
                } else {
                    err(model::Ttl::parse("expires", &e))
                },
            ));
        }
    }
    for (label, e) in errors {
        if let Some(f) = form.fields.iter_mut().find(|f| f.label == label) {
            f.error = if all || f.touched { e } else { None };
        }
    }
}

fn submit(kind: &FormKind, form: &Form, _domain: Option<&DomainRow>) -> Submit {
    let v = |l: &str| form.value(l);
    let checked = |l: &str| form.field(l).map(Field::checked).unwrap_or_default();
    Submit::Write(match kind {
        FormKind::NewDomain => WriteOp::DomainAdd { name: v("domain") },
        FormKind::NewUser => WriteOp::UserAdd {
            email: v("email"),
            domain: v("domain"),
            name: v("name"),
            role: v("role"),
        },
        FormKind::NewStation => WriteOp::StationAdd {
            user: v("owner"),
            domain: None,
            name: v("name"),
            vat: opt(v("eu vat id")),
            rn: opt(v("reg. number")),
            country: opt(v("country")),
        },
        FormKind::ChangeRole { id, email } => {
            let role = v("role");
            return Submit::Narrowing(Confirm {
                title: format!("Role of {}", super::fmt::safe(email)),
                lines: vec![format!(
                    "{} gets role {role}; what goes beyond its scopes goes with it.",
                    super::fmt::safe(email)
                )],
                op: WriteOp::UserRole {
                    id: id.clone(),
                    email: email.clone(),
                    role,
                },
            });
        }
        FormKind::NewRole => WriteOp::RoleAdd {
            name: v("name"),
            description: v("description"),
            scopes: checked("scopes"),
        },
        FormKind::NewScope => WriteOp::ScopeAdd {
            name: v("name"),
            description: v("description"),
            implies: checked("implies"),
        },
        FormKind::Grant { role } => WriteOp::RoleGrant {
            role: role.clone(),
            scopes: checked("scopes"),
        },
        FormKind::Revoke { role, users } => {
            let scopes = checked("scopes");
            return Submit::Narrowing(Confirm {
                title: format!("Revoke {} from {role}", scopes.join(" ")),
                lines: vec![format!(
                    "{users} user(s) of {role} lose these scopes (and what they imply)."
                )],
                op: WriteOp::RoleRevoke {
                    role: role.clone(),
                    scopes,
                },
            });
        }
        FormKind::NewOperator => WriteOp::OperatorAdd {
            account: v("account"),
            role: v("role"),
            domains: checked("domains"),
        },
        FormKind::KeyRm { client_id, .. } => WriteOp::KeyRm {
            client_id: client_id.clone(),
        },
        FormKind::SigningRotate => {
            let alg = v("alg");
            return Submit::Confirm(Confirm {
                title: format!("Rotate to a new {alg} signing key"),
                lines: vec![
                    "New tokens are signed with the new key; the current one keeps".into(),
                    "verifying the tokens it signed until you retire it.".into(),
                ],
                op: WriteOp::SigningRotate { alg },
            });
        }
        FormKind::TokenRevoke { jti } => WriteOp::TokenRevoke {
            jti: jti.clone(),
            reason: opt(v("reason")),
        },
        FormKind::NewKey => {
            let scopes: Vec<String> = v("scopes").split_whitespace().map(String::from).collect();
            return Submit::Issue(IssueOp {
                token: false,
                user_id: String::new(),
                email: v("user"),
                domain: Some(v("domain"))
                    .filter(|d| d != USERS_DOMAIN)
                    .unwrap_or_default(),
                scopes: (!scopes.is_empty()).then_some(scopes),
                expires: opt(v("expires")),
                name: opt(v("name")),
                refresh: v("refresh").starts_with("with "),
                rate_exempt: v("limits").starts_with("exempt"),
            });
        }
        FormKind::NewApp => {
            let scopes = checked("scopes");
            return Submit::IssueApp(AppOp {
                name: v("name"),
                owner: v("owner"),
                redirect_uris: v("redirect URIs")
                    .split_whitespace()
                    .map(String::from)
                    .collect(),
                scopes: (!scopes.is_empty()).then_some(scopes),
            });
        }
        FormKind::ConsentGrant { app } => WriteOp::ConsentGrant {
            user: v("user"),
            app: app.clone(),
            scopes: checked("scopes"),
        },
        FormKind::ConfigSet { key } => WriteOp::ConfigSet {
            key: key.clone(),
            value: v("value"),
        },
        FormKind::UserRm { email, domain } => WriteOp::UserRm {
            email: email.clone(),
            domain: domain.clone(),
        },
        FormKind::Import => WriteOp::UserImport {
            path: v("file").trim().to_string(),
            domain: v("domain"),
            dry_run: v("mode") != "import",
        },
        FormKind::Purge => {
            let retention = v("expired before").trim().to_string();
            return Submit::Narrowing(Confirm {
                title: "Purge expired token records".into(),
                lines: vec![format!(
                    "Records of tokens that expired more than {retention} ago go for good, \
                     with their refresh tokens and authorization codes."
                )],
                op: WriteOp::TokenPurge {
                    retention,
                    before: None,
                },
            });
        }
        FormKind::ScopeEdit { name } => WriteOp::ScopeEdit {
            name: name.clone(),
            description: v("description"),
            implies: checked("implies"),
        },
        FormKind::UserRename { id, version, email } => WriteOp::UserRename {
            id: id.clone(),
            version: *version,
            email: email.clone(),
            name: v("name"),
        },
        FormKind::StationEdit { id } => WriteOp::StationEdit {
            id: id.clone(),
            eu_vat_id: v("EU VAT id"),
            rn: v("registration"),
            country: v("country"),
        },
        FormKind::ConsentRevoke { app } => WriteOp::ConsentRevoke {
            user: v("user"),
            app: app.clone(),
        },
        FormKind::EnableApi {
            user_id,
            email,
            domain,
        } => {
            let all = match form.field("scopes").map(|f| &f.kind) {
                Some(super::widgets::form::FieldKind::Checks { options, .. }) => {
                    options.iter().all(|(_, on)| *on)
                }
                _ => true,
            };
            return Submit::Issue(IssueOp {
                token: v("issue") == "token",
                user_id: user_id.clone(),
                email: email.clone(),
                domain: domain.clone(),
                scopes: if all { None } else { Some(checked("scopes")) },
                expires: opt(v("expires")),
                name: None,
                refresh: true,
                rate_exempt: false,
            });
        }
    })
}
