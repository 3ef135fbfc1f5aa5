//! `update` tests: navigation, filtering and staleness, forms, confirmations,
//! permissions, palette and domain filter. No terminal, no database.

use super::app::{Action, Effect, Loaded, Overlay, Rehearsed, Request, Rows, WriteOp};
use super::fixture::{self, NOW};
use super::screens::ScreenId;
use super::widgets::list::Pos;
use keyward::model::OperatorRole;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn key(app: &mut super::app::App, c: KeyCode) -> Vec<Effect> {
    app.update(Action::Key(KeyEvent::new(c, KeyModifiers::NONE)))
}
fn chars(app: &mut super::app::App, s: &str) -> Vec<Effect> {
    s.chars().flat_map(|c| key(app, KeyCode::Char(c))).collect()
}
fn ticks(app: &mut super::app::App, n: usize) -> Vec<Effect> {
    (0..n)
        .flat_map(|_| app.update(Action::Tick { now: NOW }))
        .collect()
}
fn page_requests(fx: &[Effect]) -> Vec<(ScreenId, String, u64)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Load(Request::Page { screen, spec, .. }) => {
                Some((*screen, spec.filter.clone(), spec.generation))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn number_keys_tab_and_back_navigate() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Admin);
    let fx = key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.screen, ScreenId::Users);
    assert_eq!(page_requests(&fx).len(), 1, "first visit loads the list");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, ScreenId::Roles);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.screen, ScreenId::Users);
    let fx = key(&mut app, KeyCode::Char('2'));
    assert!(
        page_requests(&fx).is_empty(),
        "a loaded screen is not reloaded by switching"
    );
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(app.screen, ScreenId::Dashboard);
    assert!(!app.quit);
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit, "q on the top screen quits");
}

#[test]
fn ctrl_c_quits_from_inside_a_form() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('n'));
    assert!(matches!(app.overlay, Some(Overlay::Form { .. })));
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.quit);
}

#[test]
fn ctrl_z_asks_to_suspend_and_keeps_what_is_open() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('n'));
    chars(&mut app, "ab");
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('z'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.suspend && !app.quit);
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the form stays open")
    };
    assert_eq!(form.value("email"), "ab", "the field did not take a 'z'");
}

#[test]
fn list_moves_and_asks_for_details() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    assert_eq!(app.users.sel, 0);
    let fx = key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.users.sel, 1);
    assert!(fx.contains(&Effect::Load(Request::UserDetail { id: "u0001".into() })));
    key(&mut app, KeyCode::Char('k'));
    key(&mut app, KeyCode::Char('k'));
    assert_eq!(app.users.sel, 0, "clamped at the top");
    key(&mut app, KeyCode::PageDown);
    assert!(app.users.sel > 5);
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.users.sel, 59, "all rows loaded: G needs no fetch");
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.users.sel, 0);
}

#[test]
fn g_and_shift_g_reach_the_ends_of_a_paged_list_beyond_what_is_loaded() {
    use super::widgets::list::Pos;
    let ends = |fx: &[Effect]| -> Vec<Pos> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Load(Request::Page { spec, .. }) => Some(spec.pos.clone()),
                _ => None,
            })
            .collect()
    };
    let mut app = fixture::app(ScreenId::Keys, (80, 24), OperatorRole::Admin);
    // The database holds more keys than the pages loaded: G asks for the last page,
    // g for the first, instead of stopping at the end of what is in memory.
    app.keys.at_end = false;
    assert_eq!(ends(&key(&mut app, KeyCode::Char('G'))), vec![Pos::Bottom]);
    app.keys.at_start = false;
    assert_eq!(ends(&key(&mut app, KeyCode::Char('g'))), vec![Pos::Top]);
}

#[test]
fn slash_filters_a_whole_list_in_memory_and_esc_brings_every_row_back() {
    use super::app::Loaded;
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Admin);
    let (apps, _) = fixture::apps();
    let one = apps[0].clone();
    let rows: Vec<_> = [
        "Invoice Sync",
        "Ledger Bridge",
        "Invoice Archive",
        "Payroll",
    ]
    .iter()
    .enumerate()
    .map(|(i, n)| keyward::store::credentials::AppRow {
        id: format!("a{i}"),
        client_id: format!("kwa_{i:04}"),
        name: n.to_string(),
        ..one.clone()
    })
    .collect();
    let generation = app.apps.generation;
    app.update(Action::Loaded(Loaded::Apps {
        generation,
        result: Ok((rows, Vec::new(), Vec::new())),
    }));
    let names = |app: &super::app::App| -> Vec<String> {
        app.apps.items.iter().map(|a| a.name.clone()).collect()
    };
    key(&mut app, KeyCode::Char('j'));
    // Typed letters go to the filter (not to commands: `n` would open a form), case-blind;
    // nothing is asked of the database.
    assert!(key(&mut app, KeyCode::Char('/')).is_empty());
    assert!(chars(&mut app, "INVOICE").is_empty());
    assert!(app.overlay.is_none());
    assert_eq!(names(&app), ["Invoice Sync", "Invoice Archive"]);
    assert_eq!((app.apps.sel, app.apps.count()), (0, "2 of 4".to_string()));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    assert!(!app.apps.editing);
    assert_eq!(app.apps.items[app.apps.sel].name, "Invoice Archive");
    // The owner's email is found too; a reload keeps the filter.
    key(&mut app, KeyCode::Char('/'));
    for _ in 0.."INVOICE".len() {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "carol@");
    key(&mut app, KeyCode::Enter);
    assert_eq!(names(&app).len(), 4);
    key(&mut app, KeyCode::Char('/'));
    chars(&mut app, " ledger");
    let generation = app.apps.generation;
    let (again, _) = fixture::apps();
    app.update(Action::Loaded(Loaded::Apps {
        generation,
        result: Ok((again, Vec::new(), Vec::new())),
    }));
    assert_eq!(app.apps.count(), "0 of 1");
    // Esc stops typing and clears it: every row again.
    key(&mut app, KeyCode::Esc);
    assert!(!app.apps.editing);
    assert_eq!(names(&app), ["Invoice Sync"]);
    assert_eq!(app.apps.count(), "1");
}

#[test]
fn filter_is_debounced_and_stale_answers_are_dropped() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('/'));
    assert!(app.users.editing);
    let before = app.users.generation;
    let fx = chars(&mut app, "al");
    assert!(page_requests(&fx).is_empty(), "no query per keystroke");
    assert_eq!(
        app.users.generation,
        before + 2,
        "each keystroke bumps the generation"
    );
    assert!(app.users.loading(), "spinner while the filter is pending");
    let fx = ticks(&mut app, 3);
    let reqs = page_requests(&fx);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].1, "al");
    let sent = reqs[0].2;
    // Another keystroke: the answer for "al" is now stale.
    chars(&mut app, "i");
    let stale = app.update(Action::Loaded(Loaded::Page {
        screen: ScreenId::Users,
        generation: sent,
        pos: Pos::Top,
        result: Ok((Rows::Users(vec![fixture::users()[1].clone()]), Some(1))),
    }));
    assert!(stale.is_empty());
    assert_eq!(app.users.rows.len(), 60, "previous rows stay visible");
    let fx = ticks(&mut app, 3);
    let reqs = page_requests(&fx);
    assert_eq!(reqs[0].1, "ali");
    app.update(Action::Loaded(Loaded::Page {
        screen: ScreenId::Users,
        generation: reqs[0].2,
        pos: Pos::Top,
        result: Ok((Rows::Users(vec![fixture::users()[0].clone()]), Some(1))),
    }));
    assert_eq!(app.users.rows.len(), 1);
    assert_eq!(app.users.total, Some(1));
    // Esc clears the filter and reloads everything.
    let fx = key(&mut app, KeyCode::Esc);
    assert!(!app.users.editing);
    assert_eq!(app.users.filter.value(), "");
    assert_eq!(page_requests(&fx)[0].1, "");
}

#[test]
fn sort_keys_restart_with_a_new_generation() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    let g = app.users.generation;
    let fx = key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.users.sort, 1);
    assert_eq!(
        page_requests(&fx),
        vec![(ScreenId::Users, String::new(), g + 1)]
    );
    key(&mut app, KeyCode::Char('S'));
    assert!(app.users.desc);
}

#[test]
fn a_key_for_another_screen_says_where_it_works() {
    let mut app = fixture::app(ScreenId::Roles, (80, 24), OperatorRole::Admin);
    let note = |app: &super::app::App| app.toast.as_ref().map(|t| t.text.clone());
    assert!(key(&mut app, KeyCode::Char('/')).is_empty());
    assert_eq!(
        note(&app).as_deref(),
        Some(
            "/ (filter) works on Users, Stations, API keys, Developer apps, Tokens, \
             Signing keys, Operators, Audit"
        )
    );
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(
        note(&app).as_deref(),
        Some("s (sort) works on Users, Stations, API keys, Tokens")
    );
    assert!(app.overlay.is_none());
    // A key that means different things elsewhere only says it does nothing here;
    // keys bound nowhere, and Esc, say nothing.
    let mut app = fixture::app(ScreenId::SigningKeys, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('+'));
    assert_eq!(
        note(&app).as_deref(),
        Some("+ does nothing on Signing keys; ? lists its keys")
    );
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('§'));
    key(&mut app, KeyCode::Esc);
    assert_eq!(note(&app), None);
}

#[test]
fn new_user_form_validates_inline_and_submits() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('n'));
    chars(&mut app, "not-an-email");
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("form open")
    };
    assert!(
        form.fields[0]
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("an address like name@example.com")
    );
    // Enter with an error keeps the form open and writes nothing.
    let fx = key(&mut app, KeyCode::Enter);
    assert!(fx.is_empty());
    assert!(matches!(app.overlay, Some(Overlay::Form { .. })));
    for _ in 0..12 {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "new@acme.example");
    key(&mut app, KeyCode::Tab); // domain
    key(&mut app, KeyCode::Tab); // name
    chars(&mut app, "New Person");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Write(WriteOp::UserAdd {
            email: "new@acme.example".into(),
            domain: "free.example.com".into(),
            name: "New Person".into(),
            role: "Consumer".into(),
        })]
    );
    assert!(app.overlay.is_none());
    assert!(app.busy());
    // The answer reaches the user once, then everything reloads.
    let fx = app.update(Action::Wrote(Ok("created new@acme.example".into())));
    assert!(app.toast.as_ref().unwrap().text.contains("created"));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Load(Request::Dashboard { .. })))
    );
}

#[test]
fn core_errors_reach_the_user_in_one_popup() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    app.writing = 1;
    app.update(Action::Wrote(Err(
        "user new@acme.example already exists".into()
    )));
    assert!(matches!(&app.overlay, Some(Overlay::Error(m)) if m.contains("already exists")));
    key(&mut app, KeyCode::Char('z'));
    assert!(app.overlay.is_none(), "any key closes the error");
}

#[test]
fn disabling_asks_and_states_the_consequences() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    let fx = key(&mut app, KeyCode::Char('x'));
    assert!(fx.is_empty());
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        panic!("confirmation")
    };
    assert!(c.title.starts_with("Disable user alice@example.com"));
    assert!(
        c.lines
            .iter()
            .any(|l| l.contains("revokes 3 active token(s)")),
        "{:?}",
        c.lines
    );
    // n cancels without writing.
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    assert!(app.overlay.is_none());
    key(&mut app, KeyCode::Char('x'));
    let fx = key(&mut app, KeyCode::Char('y'));
    assert_eq!(
        fx,
        vec![Effect::Write(WriteOp::UserStatus {
            id: "u0000".into(),
            email: "alice@example.com".into(),
            disable: true
        })]
    );
}

#[test]
fn revoking_scopes_is_a_checklist_then_a_confirmation() {
    let mut app = fixture::app(ScreenId::Roles, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('j')); // Consumer
    key(&mut app, KeyCode::Char('-'));
    // Consumer's one scope comes ticked; unticked, Enter is refused inline.
    key(&mut app, KeyCode::Char(' '));
    let fx = key(&mut app, KeyCode::Enter);
    assert!(fx.is_empty(), "nothing ticked: refused inline");
    assert!(matches!(app.overlay, Some(Overlay::Form { .. })));
    key(&mut app, KeyCode::Char(' '));
    // What it takes is rehearsed first, then confirmed with the counts.
    let fx = key(&mut app, KeyCode::Enter);
    let [Effect::Load(Request::Narrowing(c))] = &fx[..] else {
        panic!("a rehearsal: {fx:?}")
    };
    app.update(Action::Loaded(Loaded::Narrowing {
        confirm: c.clone(),
        result: Ok(Rehearsed::Narrowing(
            0,
            keyward::service::scopes::Narrowing {
                revoked_tokens: 12,
                trimmed_keys: 3,
            },
        )),
    }));
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        panic!("confirmation")
    };
    assert!(c.lines[0].contains("55 user(s) of Consumer"));
    assert!(
        c.lines[1].contains("revokes 12 active token(s) and trims 3 API key(s)"),
        "{c:?}"
    );
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Write(WriteOp::RoleRevoke {
            role: "Consumer".into(),
            scopes: vec!["read".into()]
        })]
    );
}

#[test]
fn a_role_change_that_takes_tokens_is_confirmed_with_the_counts() {
    use keyward::service::scopes::Narrowing;
    let rehearse = |app: &mut super::app::App| -> Box<super::app::Confirm> {
        key(app, KeyCode::Char('R'));
        key(app, KeyCode::Right);
        let fx = key(app, KeyCode::Enter);
        match &fx[..] {
            [Effect::Load(Request::Narrowing(c))] => c.clone(),
            _ => panic!("a rehearsal: {fx:?}"),
        }
    };
    // Taking something: confirmed first, with what it takes.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    let c = rehearse(&mut app);
    let op = c.op.clone();
    assert!(matches!(op, WriteOp::UserRole { .. }), "{op:?}");
    app.update(Action::Loaded(Loaded::Narrowing {
        confirm: c,
        result: Ok(Rehearsed::Narrowing(
            0,
            Narrowing {
                revoked_tokens: 1,
                trimmed_keys: 1,
            },
        )),
    }));
    let Some(Overlay::Confirm(shown)) = &app.overlay else {
        panic!("a confirmation")
    };
    assert!(
        shown
            .lines
            .iter()
            .any(|l| l.contains("revokes 1 active token(s) and trims 1"))
    );
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Write(op.clone())]
    );
    // Taking nothing: made at once.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    let c = rehearse(&mut app);
    let fx = app.update(Action::Loaded(Loaded::Narrowing {
        confirm: c,
        result: Ok(Rehearsed::Narrowing(0, Narrowing::default())),
    }));
    assert_eq!(fx, vec![Effect::Write(op)]);
    // Refused (say, an admin role by a support operator): the form comes back.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    let c = rehearse(&mut app);
    app.update(Action::Loaded(Loaded::Narrowing {
        confirm: c,
        result: Err("only an admin operator may assign it".into()),
    }));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the form comes back: {:?}", app.overlay)
    };
    assert!(form.failed.as_deref().unwrap().contains("only an admin"));
}

#[test]
fn removing_a_built_in_or_default_role_is_refused_before_asking() {
    let mut app = fixture::app(ScreenId::Roles, (80, 24), OperatorRole::Admin);
    let error = |app: &super::app::App| match &app.overlay {
        Some(Overlay::Error(m)) => m.clone(),
        _ => String::new(),
    };
    key(&mut app, KeyCode::Char('x')); // Administrator: built in
    assert_eq!(
        error(&app),
        "role Administrator is built in and cannot be removed"
    );
    key(&mut app, KeyCode::Esc);
    // Partner, made the default: the way out is said in keys.
    app.roles.items[2].default = true;
    app.roles.items[1].default = false;
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    assert!(key(&mut app, KeyCode::Char('x')).is_empty());
    let m = error(&app);
    assert!(
        m.starts_with("role Partner is the default for new users; make another role")
            && m.contains("press d"),
        "{m}"
    );
    key(&mut app, KeyCode::Esc);
    app.roles.items[2].default = false;
    key(&mut app, KeyCode::Char('x'));
    assert!(matches!(&app.overlay, Some(Overlay::Confirm(c)) if c.title == "Remove role Partner"));
    key(&mut app, KeyCode::Esc);
    // A built-in scope.
    key(&mut app, KeyCode::Char('l'));
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(error(&app), "scope admin is built in and cannot be removed");
}

#[test]
fn granting_ticks_the_scope_highlighted_in_the_scopes_pane() {
    let mut app = fixture::app(ScreenId::Roles, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('j')); // Consumer: read; lacks admin and write
    key(&mut app, KeyCode::Char('l'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j')); // write
    key(&mut app, KeyCode::Char('h'));
    key(&mut app, KeyCode::Char('+'));
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Write(WriteOp::RoleGrant {
            role: "Consumer".into(),
            scopes: vec!["write".into()]
        })]
    );
}

#[test]
fn operators_without_permission_get_the_reason_not_the_action() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Viewer);
    let fx = key(&mut app, KeyCode::Char('n'));
    assert!(fx.is_empty());
    assert!(app.overlay.is_none());
    let t = app.toast.as_ref().expect("a reason").text.clone();
    assert!(t.contains("viewer") && t.contains("support"), "{t}");
    // Support may not touch roles.
    let mut app = fixture::app(ScreenId::Roles, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('+'));
    assert!(app.overlay.is_none());
}

#[test]
fn palette_opens_users_filtered() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char(':'));
    chars(&mut app, "usr alice");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, ScreenId::Users);
    assert_eq!(app.users.filter.value(), "alice");
    assert_eq!(page_requests(&fx)[0].1, "alice");
}

#[test]
fn domain_filter_reloads_every_screen() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('D'));
    key(&mut app, KeyCode::Char('j'));
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        app.domain.as_ref().map(|d| d.name.as_str()),
        Some("free.example.com")
    );
    assert!(fx.contains(&Effect::Load(Request::Dashboard {
        generation: app.dash_generation,
        domain: Some("d1".into())
    })));
    assert!(fx.iter().any(|e| matches!(e, Effect::Load(Request::Page { screen: ScreenId::Users, domain: Some(d), .. }) if d == "d1")));
    assert!(!app.stations.loaded, "other lists reload when shown");
    // :domain all clears it.
    key(&mut app, KeyCode::Char(':'));
    chars(&mut app, "domain all");
    key(&mut app, KeyCode::Enter);
    assert!(app.domain.is_none());
}

#[test]
fn enter_on_a_waiting_signup_opens_the_user_for_a_viewer() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Viewer);
    key(&mut app, KeyCode::Char('j'));
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, ScreenId::Users);
    assert_eq!(page_requests(&fx)[0].1, "bob@example.com");
}

#[test]
fn the_expiring_panel_takes_the_selection_and_opens_a_token() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('l'));
    assert_eq!(app.dash_pane, 1);
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.dash_exp_sel, 1);
    // A reload that brings a token sooner to expire keeps the highlight on its token.
    let mut d = fixture::dashboard();
    d.expiring.insert(0, fixture::token(7));
    app.update(Action::Loaded(Loaded::Dashboard {
        generation: app.dash_generation,
        result: Ok(Box::new(d)),
    }));
    assert_eq!(app.dash_exp_sel, 2, "still token 1, now third");
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.dash_exp_sel, 3, "stops at the last of four");
    assert_eq!(app.dash_sel, 0, "the sign-ups' selection stays");
    let jti = fixture::token(2).jti;
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, ScreenId::Tokens);
    assert_eq!(page_requests(&fx)[0].1, jti);
    // Back on the sign-ups, Enter is the support flow again.
    key(&mut app, KeyCode::Char('1'));
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(app.dash_pane, 0);
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&app.overlay, Some(Overlay::Form { .. })),
        "{:?}",
        app.overlay
    );
}

/// Support staff keep the Dashboard open: it reloads itself every few seconds (not
/// while a dialog is open over it, nor on other screens), and a sign-up that arrives
/// does not move the selection off the one chosen.
#[test]
fn dashboard_reloads_itself_and_keeps_the_selected_signup() {
    let dash_loads = |fx: &[Effect]| {
        fx.iter()
            .filter(|e| matches!(e, Effect::Load(Request::Dashboard { .. })))
            .count()
    };
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Support);
    let period = super::app::DASH_REFRESH_TICKS as usize;
    assert_eq!(dash_loads(&ticks(&mut app, period)), 1);
    // Not again while that load is out.
    assert_eq!(dash_loads(&ticks(&mut app, period)), 0);
    key(&mut app, KeyCode::Char('j'));
    let bob = fixture::dashboard().pending_users[1].clone();
    let mut newer = fixture::dashboard();
    let mut carol = newer.pending_users[0].clone();
    carol.id = "newcomer".into();
    carol.email = "newcomer@example.com".into();
    newer.pending_users.insert(0, carol);
    app.update(Action::Loaded(Loaded::Dashboard {
        generation: app.dash_generation,
        result: Ok(Box::new(newer)),
    }));
    assert_eq!(app.dash.as_ref().unwrap().pending_users.len(), 3);
    assert_eq!(
        app.dash.as_ref().unwrap().pending_users[app.dash_sel].id,
        bob.id,
        "still on bob"
    );
    // A dialog open over it, or another screen: no reloads.
    key(&mut app, KeyCode::Enter);
    assert!(app.overlay.is_some());
    assert_eq!(dash_loads(&ticks(&mut app, 2 * period)), 0);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(dash_loads(&ticks(&mut app, 2 * period)), 0);
}

#[test]
fn e_renames_a_user_and_edits_a_stations_identifiers() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Support);
    let u = app.users.selected().cloned().unwrap();
    key(&mut app, KeyCode::Char('e'));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the rename form")
    };
    assert_eq!(form.value("name"), u.name);
    for _ in 0..u.name.chars().count() {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "Alice M.");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Write(WriteOp::UserRename {
            id: u.id.clone(),
            version: u.version,
            email: u.email.clone(),
            name: "Alice M.".into()
        })]
    );
    // Stations: a registration number needs its country; both, or neither.
    let mut app = fixture::app(ScreenId::Stations, (80, 24), OperatorRole::Support);
    let s = app.stations.selected().cloned().unwrap();
    key(&mut app, KeyCode::Char('e'));
    key(&mut app, KeyCode::Tab);
    chars(&mut app, "HRB 12345");
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "no country");
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the form stays")
    };
    let why = form
        .field("country")
        .and_then(|f| f.error.clone())
        .unwrap_or_default();
    assert!(why.contains("go together"), "{why}");
    // The refused form puts the cursor on the field to correct.
    chars(&mut app, "de");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Write(WriteOp::StationEdit {
            id: s.id.clone(),
            eu_vat_id: s.eu_vat_id.clone().unwrap_or_default(),
            rn: "HRB 12345".into(),
            country: "de".into()
        })]
    );
}

#[test]
fn a_new_key_finds_its_user_by_email_when_every_domain_is_shown() {
    let mut app = fixture::app(ScreenId::Keys, (80, 24), OperatorRole::Admin);
    assert!(app.domain.is_none(), "the fixture shows every domain");
    key(&mut app, KeyCode::Char('n'));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the form")
    };
    // Not whichever domain sorts first: the user's own, found by the address.
    assert_eq!(form.value("domain"), "the user's");
    chars(&mut app, "alice@example.com");
    let fx = key(&mut app, KeyCode::Enter);
    let [Effect::Issue(op)] = fx.as_slice() else {
        panic!("one issue effect: {fx:?}")
    };
    assert_eq!(
        (op.email.as_str(), op.domain.as_str()),
        ("alice@example.com", "")
    );
}

#[test]
fn demo_data_is_offered_to_an_empty_database_only() {
    // The fixture's database holds 60 users: L says why it does nothing.
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Admin);
    assert!(key(&mut app, KeyCode::Char('L')).is_empty());
    assert!(app.overlay.is_none());
    let note = app
        .toast
        .as_ref()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert!(note.contains("holds 60 user(s)"), "{note}");
    // Empty: the confirmation.
    if let Some(d) = app.dash.as_mut() {
        d.users = 0;
    }
    key(&mut app, KeyCode::Char('L'));
    assert!(matches!(app.overlay, Some(Overlay::Confirm(_))));
}

#[test]
fn enable_access_offers_a_token_the_default_lifetime_not_a_keys() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Enter);
    let expires = |app: &super::app::App| match &app.overlay {
        Some(Overlay::Form { form, .. }) => (form.value("issue"), form.value("expires")),
        other => panic!("the form: {other:?}"),
    };
    assert_eq!(expires(&app), ("API key".into(), "90d".into()));
    key(&mut app, KeyCode::Right);
    assert_eq!(expires(&app), ("token".into(), String::new()));
    key(&mut app, KeyCode::Left);
    assert_eq!(expires(&app), ("API key".into(), "90d".into()));
    // What the operator typed stays.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    for _ in 0..3 {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "30d");
    key(&mut app, KeyCode::BackTab);
    key(&mut app, KeyCode::BackTab);
    key(&mut app, KeyCode::Right);
    assert_eq!(expires(&app), ("token".into(), "30d".into()));
}

/// The support flow from the Dashboard: select the sign-up, Enter, Enter.
#[test]
fn support_flow_reaches_the_reveal_dialog_within_ten_keys() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Support);
    let mut keys = 0;
    let mut press = |app: &mut super::app::App, c| {
        keys += 1;
        key(app, c)
    };
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("Enable API access opens")
    };
    assert!(form.title.contains("Enable API access · bob@example.com"));
    assert_eq!(form.value("issue"), "API key");
    let bob = &fixture::dashboard().pending_users[1];
    let allowed = fixture::roles()
        .into_iter()
        .find(|r| r.name == bob.role)
        .unwrap()
        .effective_scopes;
    assert_eq!(
        form.field("scopes").unwrap().checked(),
        allowed,
        "pre-filled with, and limited to, the role's scopes"
    );
    let fx = press(&mut app, KeyCode::Enter);
    let [Effect::Issue(op)] = fx.as_slice() else {
        panic!("one issue effect: {fx:?}")
    };
    assert!(!op.token);
    assert_eq!(op.email, "bob@example.com");
    assert_eq!(op.scopes, None, "every allowed scope: the role's own");
    assert_eq!(op.expires.as_deref(), Some("90d"));
    app.update(Action::Issued(Ok(Box::new(fixture::reveal()))));
    assert!(matches!(app.overlay, Some(Overlay::Reveal(_))));
    assert!(keys <= 10, "{keys} keys");
}

#[test]
fn enable_api_form_validates_scopes_and_expiry_and_can_mint() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('t'));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("t opens the dialog")
    };
    assert_eq!(form.value("issue"), "token");
    // Untick every scope, then a bad lifetime: Enter refuses.
    key(&mut app, KeyCode::Tab);
    let n = match &app.overlay {
        Some(Overlay::Form { form, .. }) => form.field("scopes").unwrap().checked().len(),
        _ => 0,
    };
    for i in 0..n {
        if i > 0 {
            key(&mut app, KeyCode::Right);
        }
        key(&mut app, KeyCode::Char(' '));
    }
    key(&mut app, KeyCode::Tab);
    chars(&mut app, "soon");
    let fx = key(&mut app, KeyCode::Enter);
    assert!(fx.is_empty());
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("still open")
    };
    assert!(form.field("scopes").unwrap().error.is_some());
    assert!(form.field("expires").unwrap().error.is_some());
    // A viewer may not.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Viewer);
    key(&mut app, KeyCode::Char('a'));
    assert!(!matches!(app.overlay, Some(Overlay::Form { .. })));
}

#[test]
fn reveal_copies_with_osc52_and_is_wiped_on_close() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Support);
    app.update(Action::Issued(Ok(Box::new(fixture::reveal()))));
    let fx = key(&mut app, KeyCode::Char('c'));
    match fx.as_slice() {
        [Effect::Clipboard(s)] => assert!(s.expose().starts_with("kws_")),
        _ => panic!("{fx:?}"),
    }
    assert!(matches!(&app.overlay, Some(Overlay::Reveal(r)) if r.copied));
    assert!(!format!("{fx:?}").contains("kws_"), "Debug never prints it");
    key(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none(), "closing drops (and so zeroizes) it");
}

#[test]
fn deleting_a_key_states_its_live_tokens_and_big_ones_need_the_name() {
    let mut app = fixture::app(ScreenId::Keys, (80, 24), OperatorRole::Support);
    let fx = key(&mut app, KeyCode::Char('x'));
    let client_id = fixture::keys()[0].client_id.clone();
    assert_eq!(
        fx,
        vec![Effect::Load(Request::KeyLiveTokens {
            client_id: client_id.clone()
        })]
    );
    app.update(Action::Loaded(Loaded::KeyLiveTokens {
        client_id: client_id.clone(),
        result: Ok(3),
    }));
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        panic!("a confirmation")
    };
    assert!(c.lines.iter().any(|l| l.contains("revokes 3 active token")));
    let fx = key(&mut app, KeyCode::Char('y'));
    assert_eq!(
        fx,
        vec![Effect::Write(WriteOp::KeyRm {
            client_id: client_id.clone()
        })]
    );
    // Many live tokens: type the key's name.
    key(&mut app, KeyCode::Char('r'));
    app.update(Action::Loaded(Loaded::KeyLiveTokens {
        client_id: client_id.clone(),
        result: Ok(250),
    }));
    assert!(matches!(app.overlay, Some(Overlay::Form { .. })));
    chars(&mut app, "api ke");
    assert!(
        key(&mut app, KeyCode::Enter).is_empty(),
        "wrong name refused"
    );
    chars(&mut app, "y");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Write(WriteOp::KeyRm { client_id })]
    );
}

#[test]
fn signing_keys_rotate_with_a_chosen_alg_and_retire_with_the_token_choice() {
    let mut app = fixture::app(ScreenId::SigningKeys, (80, 24), OperatorRole::Admin);
    // The active key is refused.
    key(&mut app, KeyCode::Char('x'));
    assert!(matches!(&app.overlay, Some(Overlay::Error(m)) if m.contains("rotate first")));
    key(&mut app, KeyCode::Esc);
    // Rotate: choose EdDSA, confirm.
    key(&mut app, KeyCode::Char('n'));
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.overlay, Some(Overlay::Confirm(_))));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Write(WriteOp::SigningRotate {
            alg: "EdDSA".into()
        })]
    );
    // A verify-only key with live tokens: the confirmation says it revokes them (a
    // choice to "wait" always failed); Esc waits instead.
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('x'));
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        panic!("a confirmation: {:?}", app.overlay)
    };
    assert!(
        c.lines.join(" ").contains("retiring it revokes them"),
        "{c:?}"
    );
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Write(WriteOp::SigningRetire {
            kid: "8b01d4e2".into(),
            revoke_tokens: true
        })]
    );
    // A support operator sees the reason instead.
    let mut app = fixture::app(ScreenId::SigningKeys, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('n'));
    assert!(!matches!(app.overlay, Some(Overlay::Form { .. })));
}

#[test]
fn revoking_a_token_asks_for_an_optional_reason() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Support);
    // The first one has expired: nothing to revoke.
    key(&mut app, KeyCode::Char('r'));
    assert!(app.overlay.is_none() && app.toast.is_some());
    key(&mut app, KeyCode::Char('j'));
    let t = app.tokens.selected().cloned().unwrap();
    key(&mut app, KeyCode::Char('r'));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("a revoke dialog: {:?}", app.toast)
    };
    assert!(form.title.contains(&t.jti));
    chars(&mut app, "customer asked");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Write(WriteOp::TokenRevoke {
            jti: t.jti,
            reason: Some("customer asked".into())
        })]
    );
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Viewer);
    key(&mut app, KeyCode::Char('r'));
    assert!(app.overlay.is_none());
}

#[test]
fn inspector_takes_a_pasted_token_and_acts_on_the_answer() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('i'));
    assert!(matches!(app.overlay, Some(Overlay::Inspect(_))));
    let fx = app.update(Action::Paste("eyJhbGciOiJFUzI1NiJ9.e30.sig\n".into()));
    let jwt = "eyJhbGciOiJFUzI1NiJ9.e30.sig".to_string();
    assert_eq!(
        fx,
        vec![Effect::Load(Request::Introspect { jwt: jwt.clone() })]
    );
    // A stale answer (another token) is dropped.
    app.update(Action::Loaded(Loaded::Introspect {
        jwt: "other".into(),
        result: Ok(Box::new(fixture::introspection(true))),
    }));
    assert!(matches!(&app.overlay, Some(Overlay::Inspect(i)) if i.result.is_none()));
    app.update(Action::Loaded(Loaded::Introspect {
        jwt,
        result: Ok(Box::new(fixture::introspection(true))),
    }));
    // r revokes the inspected token, with Tokens behind the form showing that token
    // (not whichever row was highlighted there).
    app.tokens.sel = 3;
    let fx = key(&mut app, KeyCode::Char('r'));
    assert!(
        matches!(&app.overlay, Some(Overlay::Form { form, .. }) if form.title.contains("01a20001"))
    );
    assert_eq!(app.screen, ScreenId::Tokens);
    assert!(page_requests(&fx)[0].1.starts_with("01a20001"), "{fx:?}");
    key(&mut app, KeyCode::Esc);
    // :inspect TOKEN, then u opens its user.
    key(&mut app, KeyCode::Char(':'));
    chars(&mut app, "inspect abc.def.ghi");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Load(Request::Introspect {
            jwt: "abc.def.ghi".into()
        })]
    );
    app.update(Action::Loaded(Loaded::Introspect {
        jwt: "abc.def.ghi".into(),
        result: Ok(Box::new(fixture::introspection(false))),
    }));
    let fx = key(&mut app, KeyCode::Char('u'));
    assert_eq!(app.screen, ScreenId::Users);
    assert_eq!(page_requests(&fx)[0].1, "alice@example.com");
}

#[test]
fn inspector_keys_do_nothing_but_say_so_on_a_malformed_token() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char(':'));
    chars(&mut app, "inspect xyz");
    key(&mut app, KeyCode::Enter);
    let mut nothing = fixture::introspection(false);
    nothing.sub = None;
    nothing.username = None;
    nothing.client_id = None;
    nothing.claims = None;
    nothing.header = None;
    nothing.record = None;
    nothing.reason = Some(keyward::token::Reason::Malformed);
    app.update(Action::Loaded(Loaded::Introspect {
        jwt: "xyz".into(),
        result: Ok(Box::new(nothing)),
    }));
    // Its hint offers none of r, u, k; each says why it does nothing, and the
    // inspector stays open on the same screen (k used to leave for API keys, where
    // the next `r` asked to delete a key).
    let text = super::snapshot_tests::screen(&app);
    assert!(
        text.contains("e new token · Esc back") && !text.contains("r revoke"),
        "{text}"
    );
    for (c, says) in [
        ('r', "nothing to revoke"),
        ('u', "no user"),
        ('k', "no client"),
    ] {
        assert!(key(&mut app, KeyCode::Char(c)).is_empty());
        assert!(matches!(app.overlay, Some(Overlay::Inspect(_))), "{c}");
        assert_eq!(app.screen, ScreenId::Users, "{c}");
        let toast = app
            .toast
            .as_ref()
            .map(|t| t.text.clone())
            .unwrap_or_default();
        assert!(toast.contains(says), "{c}: {toast}");
    }
    // e: a new token, without the old verdict.
    key(&mut app, KeyCode::Char('e'));
    assert!(matches!(&app.overlay, Some(Overlay::Inspect(i)) if i.result.is_none()));
}

#[test]
fn inspector_k_says_when_a_token_has_no_api_key() {
    for (client, says) in [
        ("keyward-console", "minted by an operator"),
        ("keyward-login", "from a user's sign-in"),
    ] {
        let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Viewer);
        key(&mut app, KeyCode::Char('i'));
        app.update(Action::Paste("a.b.c".into()));
        let mut i = fixture::introspection(true);
        i.client_id = Some(client.into());
        app.update(Action::Loaded(Loaded::Introspect {
            jwt: "a.b.c".into(),
            result: Ok(Box::new(i)),
        }));
        key(&mut app, KeyCode::Char('k'));
        assert!(
            matches!(app.overlay, Some(Overlay::Inspect(_))),
            "stays open"
        );
        assert_eq!(app.screen, ScreenId::Tokens);
        let toast = app
            .toast
            .as_ref()
            .map(|t| t.text.clone())
            .unwrap_or_default();
        assert!(toast.contains(says), "{toast}");
    }
}

#[test]
fn inspector_names_the_user_of_a_sub_by_address() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Viewer);
    key(&mut app, KeyCode::Char('i'));
    app.update(Action::Paste("a.b.c".into()));
    let mut i = fixture::introspection(true);
    i.claims = Some(serde_json::json!({"sub": "u0001"}));
    app.update(Action::Loaded(Loaded::Introspect {
        jwt: "a.b.c".into(),
        result: Ok(Box::new(i)),
    }));
    let text = super::snapshot_tests::screen(&app);
    assert!(text.contains("alice@example.com (u0001)"), "{text}");
}

#[test]
fn inspector_opens_a_user_named_by_id() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Viewer);
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('i'),
        KeyModifiers::NONE,
    )));
    app.update(Action::Paste("a.b.c".into()));
    let mut i = fixture::introspection(true);
    i.sub = Some("u0001".into());
    // No address known (a user removed since): by id.
    i.username = None;
    app.update(Action::Loaded(Loaded::Introspect {
        jwt: "a.b.c".into(),
        result: Ok(Box::new(i)),
    }));
    let fx = key(&mut app, KeyCode::Char('u'));
    assert_eq!(
        fx,
        vec![Effect::Load(Request::UserDetail { id: "u0001".into() })]
    );
    let bob = fixture::users()[1].clone();
    let fx = app.update(Action::Loaded(Loaded::UserDetail {
        id: "u0001".into(),
        result: Ok(Some(Box::new(fixture::detail(&bob)))),
    }));
    assert_eq!(app.screen, ScreenId::Users);
    assert_eq!(page_requests(&fx)[0].1, bob.email);
}

#[test]
fn a_terminal_too_small_to_draw_takes_no_keys_but_quit() {
    let mut app = fixture::app(ScreenId::Users, (60, 20), OperatorRole::Admin);
    for c in ['x', 'y', 'n', '3'] {
        assert!(key(&mut app, KeyCode::Char(c)).is_empty());
    }
    assert!(app.overlay.is_none());
    assert_eq!(app.screen, ScreenId::Users);
    app.update(Action::Resize(80, 24));
    key(&mut app, KeyCode::Char('x'));
    assert!(app.overlay.is_some(), "keys act again once it fits");
    let mut app = fixture::app(ScreenId::Users, (60, 20), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn a_removed_users_details_are_dropped_quietly() {
    // After `X` the list reloads; the details asked for the removed row find no user.
    // That is not an error to show over the removal's own message.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    let u = app.users.selected().cloned().unwrap();
    app.toast("removed user");
    app.update(Action::Loaded(Loaded::UserDetail {
        id: u.id.clone(),
        result: Ok(None),
    }));
    assert!(app.detail.is_none());
    assert_eq!(app.toast.as_ref().unwrap().text, "removed user");
    assert!(app.overlay.is_none());
}

#[test]
fn a_paste_is_never_typed_as_commands() {
    // A client secret pasted on Apps: its `x` would open the removal and its `y`
    // confirm it, were its letters keys.
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Admin);
    let fx = app.update(Action::Paste(
        "kws_x-y3gVUE6SRIxG9SRpgQoRagwn8MbA4j5C9_dC3hnKc".into(),
    ));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(app.overlay.is_none());
    assert_eq!(app.screen, ScreenId::Apps);
    // It went into the list's filter, which Esc clears.
    assert!(app.apps.editing);
    assert_eq!(app.apps.count(), "0 of 1");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.apps.count(), "1");
    // Over a confirmation, a paste does not answer it.
    key(&mut app, KeyCode::Char('x'));
    let fx = app.update(Action::Paste("y".into()));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(matches!(app.overlay, Some(Overlay::Confirm(_))));
    // On a list that filters, the text becomes the filter.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    app.update(Action::Paste("bob@example.com\n".into()));
    assert!(app.overlay.is_none());
    let fx = ticks(&mut app, 10);
    assert_eq!(page_requests(&fx)[0].1, "bob@example.com");
    // A token opens the inspector, wherever it is pasted.
    let mut app = fixture::app(ScreenId::Stations, (80, 24), OperatorRole::Viewer);
    let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    let fx = app.update(Action::Paste(jwt.into()));
    assert!(matches!(app.overlay, Some(Overlay::Inspect(_))));
    assert_eq!(
        fx,
        vec![Effect::Load(Request::Introspect { jwt: jwt.into() })]
    );
}

#[test]
fn removing_an_app_is_for_admins_and_states_its_consents() {
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('x'));
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        panic!("a confirmation")
    };
    assert!(c.lines.iter().any(|l| l.contains("drops its 1 consent(s)")));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Write(WriteOp::AppRm {
            client_id: "kwa_51be0c9e".into()
        })]
    );
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('x'));
    assert!(app.overlay.is_none());
}

#[test]
fn new_app_validates_redirect_uris_and_issues_with_a_reveal() {
    use super::app::AppOp;
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('n'));
    assert!(matches!(app.overlay, Some(Overlay::Form { .. })));
    chars(&mut app, "ERP Bridge");
    key(&mut app, KeyCode::Tab);
    chars(&mut app, "carol@example.com");
    key(&mut app, KeyCode::Tab);
    chars(&mut app, "http://erp.example.net/cb");
    // Submitting shows the error inline and issues nothing.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the form stays open")
    };
    let e = form.field("redirect URIs").unwrap().error.clone();
    assert!(e.is_some_and(|e| e.contains("https")), "{form:?}");
    // Fixed: the app is issued with the owner's role's scopes (none ticked).
    for _ in 0.."http://erp.example.net/cb".len() {
        key(&mut app, KeyCode::Backspace);
    }
    chars(
        &mut app,
        "https://erp.example.net/cb http://localhost:8080/cb",
    );
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::IssueApp(AppOp {
            name: "ERP Bridge".into(),
            owner: "carol@example.com".into(),
            redirect_uris: vec![
                "https://erp.example.net/cb".into(),
                "http://localhost:8080/cb".into()
            ],
            scopes: None,
        })]
    );
    // Support operators may not create apps: the reason, not the form.
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('n'));
    assert!(!matches!(app.overlay, Some(Overlay::Form { .. })));
}

#[test]
fn consents_are_granted_within_the_app_and_revoked_from_a_choice() {
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('+'));
    chars(&mut app, "bob@example.com");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Write(WriteOp::ConsentGrant {
            user: "bob@example.com".into(),
            app: "kwa_51be0c9e".into(),
            scopes: vec!["read".into()],
        })]
    );
    // `-` offers the users who consented; Enter revokes.
    app.overlay = None;
    key(&mut app, KeyCode::Char('-'));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("a form")
    };
    assert_eq!(form.value("user"), "alice@example.com");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Write(WriteOp::ConsentRevoke {
            user: "alice@example.com".into(),
            app: "kwa_51be0c9e".into(),
        })]
    );
}

#[test]
fn new_key_from_the_keys_screen_names_user_domain_and_refresh() {
    let mut app = fixture::app(ScreenId::Keys, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('n'));
    chars(&mut app, "alice@example.com");
    key(&mut app, KeyCode::Tab); // domain: the user's, else one named
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Tab); // name
    for _ in 0.."api key".len() {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "erp");
    key(&mut app, KeyCode::Tab); // scopes
    chars(&mut app, "read Write");
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "bad scope name");
    key(&mut app, KeyCode::Backspace);
    for _ in 0.."Write".len() - 1 {
        key(&mut app, KeyCode::Backspace);
    }
    let fx = key(&mut app, KeyCode::Enter);
    let [Effect::Issue(op)] = fx.as_slice() else {
        panic!("an issue effect: {fx:?}")
    };
    assert!(!op.token && op.refresh);
    assert_eq!(op.email, "alice@example.com");
    assert_eq!(op.domain, "free.example.com");
    assert_eq!(op.name.as_deref(), Some("erp"));
    assert_eq!(op.scopes, Some(vec!["read".to_string()]));
    assert_eq!(op.expires.as_deref(), Some("90d"));
}

#[test]
fn config_opens_settings_and_edits_a_value_with_validation() {
    use keyward::store::directory::SettingRow;
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Admin);
    let fx = app.run_command("config", "");
    assert_eq!(fx, vec![Effect::Load(Request::Settings)]);
    let row = |k: &str, v: &str| SettingRow {
        key: k.into(),
        value: v.into(),
        updated_at: NOW,
        version: 1,
    };
    app.update(Action::Loaded(Loaded::Settings(Ok(vec![
        row("default_ttl", "24h"),
        row("password_grant", "off"),
    ]))));
    assert!(matches!(app.overlay, Some(Overlay::Settings { .. })));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Enter);
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the setting's form")
    };
    assert_eq!(form.value("value"), "off");
    for _ in 0..3 {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "maybe");
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "refused inline");
    for _ in 0..5 {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "on");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Write(WriteOp::ConfigSet {
            key: "password_grant".into(),
            value: "on".into()
        })]
    );
    // A viewer sees the settings but cannot edit them.
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Viewer);
    app.update(Action::Loaded(Loaded::Settings(Ok(vec![row(
        "max_ttl", "365d",
    )]))));
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.overlay, Some(Overlay::Error(_))));
}

#[test]
fn removing_a_user_takes_the_email_typed_out() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    let email = app.users.selected().unwrap().email.clone();
    key(&mut app, KeyCode::Char('X'));
    chars(&mut app, "someone@else.example");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    for _ in 0.."someone@else.example".len() {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, &email.to_uppercase());
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&fx[..], [Effect::Write(WriteOp::UserRm { email: e, .. })] if *e == email),
        "{fx:?}"
    );
    // Support may not remove users.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('X'));
    assert!(!matches!(app.overlay, Some(Overlay::Form { .. })));
}

#[test]
fn domains_are_removed_from_the_picker_by_admins_only() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('D'));
    key(&mut app, KeyCode::Char('j'));
    // Counted first: one with users is refused at once, naming them; an empty one is
    // confirmed.
    let fx = key(&mut app, KeyCode::Char('x'));
    let [Effect::Load(Request::Narrowing(c))] = &fx[..] else {
        panic!("a count first: {fx:?}")
    };
    assert_eq!(
        c.op,
        WriteOp::DomainRm {
            name: "free.example.com".into()
        }
    );
    let counted = |users, stations| {
        Action::Loaded(Loaded::Narrowing {
            confirm: c.clone(),
            result: Ok(Rehearsed::DomainUse(users, stations)),
        })
    };
    app.update(counted(81, 82));
    let Some(Overlay::Error(e)) = &app.overlay else {
        panic!("refused: {:?}", app.overlay)
    };
    assert!(
        e.contains("free.example.com still has 81 user(s) and 82 station(s)"),
        "{e}"
    );
    app.overlay = None;
    app.update(counted(0, 0));
    assert!(matches!(app.overlay, Some(Overlay::Confirm(_))));
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Support);
    key(&mut app, KeyCode::Char('D'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('x'));
    assert!(matches!(app.overlay, Some(Overlay::Error(_))));
}

#[test]
fn purge_and_scope_edit_submit_what_was_typed() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('P'));
    for _ in 0.."30d".len() {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "7d");
    // Counted first, then confirmed with the count; nothing to purge is only a note.
    let fx = key(&mut app, KeyCode::Enter);
    let [Effect::Load(Request::Narrowing(c))] = &fx[..] else {
        panic!("a count first: {fx:?}")
    };
    assert_eq!(
        c.op,
        WriteOp::TokenPurge {
            retention: "7d".into(),
            before: None
        }
    );
    let counted = |tokens, others| {
        Action::Loaded(Loaded::Narrowing {
            confirm: c.clone(),
            result: Ok(Rehearsed::Purge(keyward::service::tokens::Purgeable {
                before: 1_700_000_000,
                tokens,
                others,
            })),
        })
    };
    assert!(app.update(counted(0, 0)).is_empty());
    assert!(app.overlay.is_none(), "{:?}", app.overlay);
    let note = &app.toast.as_ref().expect("a note").text;
    assert!(note.contains("nothing to purge"), "{note}");
    app.update(counted(1234, 56));
    let Some(Overlay::Confirm(confirm)) = &app.overlay else {
        panic!("confirmation: {:?}", app.overlay)
    };
    assert!(
        confirm
            .lines
            .join(" ")
            .contains("This deletes 1234 token record(s) and 56 refresh token(s) or"),
        "{confirm:?}"
    );
    // The purge takes the cutoff that was counted, not `7d` before whenever it runs.
    let purge = WriteOp::TokenPurge {
        retention: "7d".into(),
        before: Some(1_700_000_000),
    };
    assert_eq!(key(&mut app, KeyCode::Enter), vec![Effect::Write(purge)]);
    let mut app = fixture::app(ScreenId::Roles, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('e'));
    assert!(app.overlay.is_none(), "roles pane: a hint, no form");
    key(&mut app, KeyCode::Char('l'));
    key(&mut app, KeyCode::Char('e'));
    let Some(Overlay::Form { kind, .. }) = &app.overlay else {
        panic!("the scope form")
    };
    let super::app::FormKind::ScopeEdit { name } = kind else {
        panic!("{kind:?}")
    };
    let name = name.clone();
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&fx[..], [Effect::Write(WriteOp::ScopeEdit { name: n, .. })] if *n == name),
        "{fx:?}"
    );
}

#[test]
fn revoking_among_many_consents_takes_a_typed_email() {
    use super::widgets::form::FieldKind;
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Support);
    // More consents than the screen holds: the count comes from the database.
    app.consent_counts.insert("a1".into(), 5_000);
    key(&mut app, KeyCode::Char('-'));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("a form")
    };
    assert!(matches!(
        form.field("user").unwrap().kind,
        FieldKind::Text(_)
    ));
    chars(&mut app, "not-an-email");
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "refused inline");
    app.overlay = None;
    key(&mut app, KeyCode::Char('-'));
    chars(&mut app, "zoe@example.com");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Write(WriteOp::ConsentRevoke {
            user: "zoe@example.com".into(),
            app: "kwa_51be0c9e".into(),
        })]
    );
}

#[test]
fn a_huge_paste_is_cut_and_says_so() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('n'));
    // A megabyte: typed in whole, it held the console for minutes (each character
    // validated the whole value again).
    app.update(Action::Paste("x".repeat(1 << 20)));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the form stays open")
    };
    assert_eq!(form.value("email").len(), super::app::PASTE_MAX);
    let toast = app
        .toast
        .as_ref()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert!(toast.contains("cut at 2,048 characters"), "{toast}");
    // A paste that fits says nothing.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Char('n'));
    app.update(Action::Paste("new@acme.example".into()));
    assert!(app.toast.is_none());
}

#[test]
fn enter_shows_a_rows_details_and_the_screens_keys_still_act() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Admin);
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.overlay, Some(Overlay::Detail { scroll: 0 })));
    // Everything fits at 80×24: nothing to scroll.
    key(&mut app, KeyCode::Char('j'));
    assert!(matches!(app.overlay, Some(Overlay::Detail { scroll: 0 })));
    key(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none());
    assert_eq!(app.screen, ScreenId::Tokens, "Esc closes the details only");
    // A key of the screen closes the details and acts on the row shown.
    key(&mut app, KeyCode::Down);
    let shown = app.tokens.selected().unwrap().jti.clone();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('r'));
    assert!(
        matches!(&app.overlay, Some(Overlay::Form { kind: super::app::FormKind::TokenRevoke { jti }, .. }) if *jti == shown),
        "r revokes the token shown"
    );
    // Not on the Dashboard, whose Enter starts the support flow.
    let mut dash = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Admin);
    key(&mut dash, KeyCode::Enter);
    assert!(!matches!(dash.overlay, Some(Overlay::Detail { .. })));
}

#[test]
fn details_taller_than_the_terminal_scroll_within_bounds() {
    // A revocation reason of 40 wrapped rows: taller than the pop-up at 80×24.
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Admin);
    for _ in 0..4 {
        key(&mut app, KeyCode::Down);
    }
    app.tokens.rows[4].revoke_reason = Some("a long story. ".repeat(200));
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('j'));
    assert!(matches!(app.overlay, Some(Overlay::Detail { scroll: 1 })));
    let scroll = |app: &super::app::App| match app.overlay {
        Some(Overlay::Detail { scroll }) => scroll,
        _ => panic!("the details stay open"),
    };
    for _ in 0..20 {
        key(&mut app, KeyCode::PageDown);
    }
    let last = scroll(&app);
    assert!(last > 20, "{last}");
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(scroll(&app), last, "at most the last row");
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(scroll(&app), 0);
}

#[test]
fn a_revoked_tokens_details_say_who_revoked_it_and_why() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Admin);
    // The fixture's fifth token is revoked.
    for _ in 0..4 {
        key(&mut app, KeyCode::Down);
    }
    assert!(app.tokens.selected().unwrap().revoked_at.is_some());
    let d = super::screens::detail(&app).expect("a list screen");
    let all: Vec<(&str, &str)> = d
        .lines
        .iter()
        .flatten()
        .map(|f| (f.label, f.value.as_str()))
        .collect();
    assert!(all.contains(&("revoked by", "ana@bastion")), "{all:?}");
    assert!(all.contains(&("reason", "key leaked in a log")), "{all:?}");
    assert!(
        all.contains(&("issued by", "client_credentials")),
        "{all:?}"
    );
    // An unrevoked one has no such line.
    key(&mut app, KeyCode::Char('g'));
    let d = super::screens::detail(&app).expect("a list screen");
    assert!(d.lines.iter().flatten().all(|f| f.label != "revoked by"));
}

#[test]
fn a_refused_form_comes_back_as_typed_saying_why() {
    let mut app = fixture::app(ScreenId::Stations, (80, 24), OperatorRole::Admin);
    let open_and_submit = |app: &mut super::app::App, owner: &str| {
        key(app, KeyCode::Char('n'));
        chars(app, owner);
        key(app, KeyCode::Tab);
        chars(app, "Main office");
        key(app, KeyCode::Enter)
    };
    let fx = open_and_submit(&mut app, "nobody@example.com");
    assert!(
        matches!(&fx[..], [Effect::Write(WriteOp::StationAdd { user, .. })] if user == "nobody@example.com"),
        "{fx:?}"
    );
    assert!(app.overlay.is_none());
    let why = "user \"nobody@example.com\" not found; name a user by email or id";
    app.update(Action::Wrote(Err(why.into())));
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("the form again: {:?}", app.overlay)
    };
    assert_eq!(form.value("owner"), "nobody@example.com");
    assert_eq!(form.value("name"), "Main office");
    assert_eq!(form.failed.as_deref(), Some(why));
    // Drawn under the fields; the next edit clears it.
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    t.draw(|f| super::ui::render(&app, f)).unwrap();
    assert!(t.backend().to_string().contains("✗ Not saved: user"));
    key(&mut app, KeyCode::Backspace);
    let Some(Overlay::Form { form, .. }) = &app.overlay else {
        panic!("form")
    };
    assert!(form.failed.is_none());
    // Submitted again and saved: nothing comes back.
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(fx.len(), 1);
    app.update(Action::Wrote(Ok("station added".into())));
    assert!(app.overlay.is_none());
    app.update(Action::Wrote(Err("late".into())));
    assert!(matches!(&app.overlay, Some(Overlay::Error(m)) if m == "late"));
    key(&mut app, KeyCode::Esc);
    // With another write under way, which one failed is unknown: the reason pops up.
    open_and_submit(&mut app, "a@example.com");
    app.writing += 1;
    app.update(Action::Wrote(Err("refused".into())));
    assert!(matches!(&app.overlay, Some(Overlay::Error(m)) if m == "refused"));
}
