//! Rendering snapshots on a fixed fixture with ratatui's TestBackend.

use super::app::{Action, App, Info, Loaded};
use super::fixture::{self, NOW};
use super::screens::ScreenId;
use super::ui::render;
use keyward::model::OperatorRole;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

// ---------------------------------------------------------------- snapshots

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
    t
}

fn screen_text(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

/// The screen `app` draws at its size, as text (for tests elsewhere).
pub(super) fn screen(app: &App) -> String {
    screen_text(&draw(app, app.size.0, app.size.1))
}

fn press(app: &mut App, c: KeyCode) {
    app.update(Action::Key(KeyEvent::new(c, KeyModifiers::NONE)));
}

#[test]
fn snapshots_of_every_screen_at_80x24_and_120x40() {
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        for s in [
            ScreenId::Dashboard,
            ScreenId::Users,
            ScreenId::Roles,
            ScreenId::Stations,
            ScreenId::Tokens,
            ScreenId::Operators,
            ScreenId::Audit,
            ScreenId::Keys,
            ScreenId::SigningKeys,
            ScreenId::Apps,
        ] {
            let app = fixture::app(s, (w, h), OperatorRole::Admin);
            let t = draw(&app, w, h);
            insta::assert_snapshot!(format!("{:?}_{w}x{h}", s).to_lowercase(), t.backend());
        }
    }
}

#[test]
fn snapshots_of_overlays() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Support);
    press(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help_users_support", draw(&app, 80, 24).backend());
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('n'));
    for c in "bad".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    insta::assert_snapshot!("form_new_user_invalid", draw(&app, 80, 24).backend());
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('x'));
    insta::assert_snapshot!("confirm_disable", draw(&app, 80, 24).backend());
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char(':'));
    press(&mut app, KeyCode::Char('r'));
    insta::assert_snapshot!("palette", draw(&app, 80, 24).backend());
}

#[test]
fn details_cut_in_the_pane_are_whole_in_the_popup() {
    let mut app = fixture::app(ScreenId::Audit, (80, 24), OperatorRole::Admin);
    let event = app.audit.selected().unwrap().clone();
    let pane = screen_text(&draw(&app, 80, 24));
    assert!(pane.contains("Enter shows all"), "{pane}");
    assert!(
        !pane.contains(&event.hash),
        "the pane has no room for the hash: {pane}"
    );
    press(&mut app, KeyCode::Enter);
    let t = draw(&app, 80, 24);
    let text = screen_text(&t);
    assert!(text.contains(&event.hash), "{text}");
    assert!(text.contains("Esc close"), "{text}");
    insta::assert_snapshot!("detail_audit_80x24", t.backend());
}

/// An admin's console at 80×24 that has asked for its data and got no answer yet.
fn unanswered() -> App {
    let mut app = App::new(
        fixture::actor(OperatorRole::Admin),
        Info {
            database: "sqlite /data/keyward.db".into(),
        },
        NOW,
        (80, 24),
    );
    app.theme = super::theme::Theme::mono();
    let _ = app.start();
    app
}

#[test]
fn first_run_dashboard_says_what_to_do() {
    let mut app = unanswered();
    let generation = app.dash_generation;
    app.update(Action::Loaded(Loaded::Dashboard {
        generation,
        result: Ok(Default::default()),
    }));
    let t = draw(&app, 80, 24);
    let text = screen_text(&t);
    assert!(text.contains("no domain yet"), "{text}");
    assert!(text.contains("create a domain") && text.contains("load demo data"));
    insta::assert_snapshot!("first_run", t.backend());
    // The demo's confirmation wraps its first line at 80 columns; the keys that answer
    // it are still on screen (the pop-up is as tall as its wrapped text).
    press(&mut app, KeyCode::Char('L'));
    let text = screen_text(&draw(&app, 80, 24));
    assert!(
        text.contains("Load demo data") && text.contains("y confirm · n/Esc cancel"),
        "{text}"
    );
}

#[test]
fn hostile_names_render_inert() {
    let app = fixture::app(ScreenId::Dashboard, (120, 40), OperatorRole::Admin);
    let mut app = app;
    fixture::feed(&mut app, ScreenId::Users);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    let bob = app.users.selected().cloned().unwrap();
    app.update(Action::Loaded(Loaded::UserDetail {
        id: bob.id.clone(),
        result: Ok(Some(Box::new(fixture::detail(&bob)))),
    }));
    let t = draw(&app, 120, 40);
    let text = screen_text(&t);
    assert!(
        text.contains(r"Bob \e]0;pwned\x0"),
        "the list shows it escaped: {text}"
    );
    assert!(
        text.contains(r"name Bob \e]0;pwned\x07\e[2J"),
        "the detail shows all of it: {text}"
    );
    let buf = t.backend().buffer();
    assert!(
        buf.content()
            .iter()
            .all(|c| !c.symbol().chars().any(|ch| ch.is_control())),
        "no control character reaches a cell"
    );
}

#[test]
fn disabled_actions_are_dimmed_with_their_reason() {
    let mut app = fixture::app(ScreenId::Users, (120, 40), OperatorRole::Viewer);
    let t = draw(&app, 120, 40);
    let buf = t.backend().buffer().clone();
    // The hint line still lists R and x for a viewer, dimmed.
    let hint_y = 38;
    let line: String = (0..120)
        .map(|x| buf[(x, hint_y)].symbol().to_string())
        .collect();
    assert!(
        line.contains("R role") && line.contains("x disable/enable"),
        "{line}"
    );
    let x = line.find("R role").unwrap() as u16;
    assert!(
        buf[(x, hint_y)]
            .modifier
            .contains(ratatui::style::Modifier::DIM)
    );
    press(&mut app, KeyCode::Char('?'));
    let text = screen_text(&draw(&app, 120, 40));
    assert!(
        text.contains("ana is a viewer operator; this needs support or admin"),
        "{text}"
    );
}

#[test]
fn too_small_terminal_gets_a_message() {
    let app = fixture::app(ScreenId::Users, (60, 20), OperatorRole::Admin);
    let t = draw(&app, 60, 20);
    let text = screen_text(&t);
    assert!(text.contains("enlarge it to at least 80×24"), "{text}");
    // Resizing back re-lays out.
    let t = draw(&app, 80, 24);
    assert!(screen_text(&t).contains("EMAIL"));
    // Degenerate sizes never panic.
    for (w, h) in [(1, 1), (0, 0), (79, 24), (80, 23)] {
        draw(&app, w, h);
    }
}

#[test]
fn snapshots_of_the_support_flow() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Support);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("enable_api_80x24", draw(&app, 80, 24).backend());
    press(&mut app, KeyCode::Esc);
    app.update(Action::Issued(Ok(Box::new(fixture::reveal()))));
    let t = draw(&app, 80, 24);
    let text = screen_text(&t);
    assert!(text.contains("Shown only now") && text.contains("will not be shown again"));
    insta::assert_snapshot!("reveal_80x24", t.backend());
    press(&mut app, KeyCode::Enter);
    let text = screen_text(&draw(&app, 80, 24));
    assert!(!text.contains("kws_"), "gone from the screen: {text}");
}

#[test]
fn inspector_explains_a_verdict_that_is_not_a_revocation() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Support);
    press(&mut app, KeyCode::Char('i'));
    app.update(Action::Paste("aaa.bbb.ccc".into()));
    let mut i = fixture::introspection(false);
    i.reason = Some(keyward::token::Reason::BadSignature);
    i.record = None;
    app.update(Action::Loaded(Loaded::Introspect {
        jwt: "aaa.bbb.ccc".into(),
        result: Ok(Box::new(i)),
    }));
    let text = screen_text(&draw(&app, 80, 24));
    assert!(text.contains("✗ INACTIVE — bad signature"), "{text}");
    assert!(
        text.contains("its signature does not verify with its kid's key: altered or forged"),
        "{text}"
    );
}

#[test]
fn inspector_shows_the_verdict_header_and_claims() {
    for active in [false, true] {
        let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Support);
        press(&mut app, KeyCode::Char('i'));
        app.update(Action::Paste("aaa.bbb.ccc".into()));
        app.update(Action::Loaded(Loaded::Introspect {
            jwt: "aaa.bbb.ccc".into(),
            result: Ok(Box::new(fixture::introspection(active))),
        }));
        let t = draw(&app, 80, 24);
        let text = screen_text(&t);
        if active {
            assert!(text.contains("✓ ACTIVE"), "{text}");
        } else {
            assert!(
                text.contains("✗ INACTIVE — revoked 2026-11-24 11:30 by ana@bastion"),
                "{text}"
            );
            assert!(text.contains("customer asked"), "{text}");
        }
        assert!(
            text.contains("alg ES256 · typ at+jwt · kid 3f9c2a71"),
            "{text}"
        );
        assert!(text.contains("(in 3h)"), "{text}");
        insta::assert_snapshot!(
            if active {
                "inspect_active_80x24"
            } else {
                "inspect_revoked_80x24"
            },
            t.backend()
        );
    }
}

/// The rows of the screen and the terminal cursor's position.
fn rows_and_cursor(t: &mut Terminal<TestBackend>) -> (Vec<String>, (usize, usize)) {
    let rows = screen_text(t)
        .lines()
        .map(|l| l.trim_matches('"').to_string())
        .collect();
    let p = t.get_cursor_position().unwrap();
    (rows, (p.x as usize, p.y as usize))
}

/// The column (in characters) of `needle` in `row`.
fn column(row: &str, needle: &str) -> usize {
    row[..row.find(needle).unwrap()].chars().count()
}

#[test]
fn long_values_stay_on_one_row_with_the_cursor_at_their_end() {
    // A form's text field: 150 characters typed into "name" scroll within its row.
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Support);
    press(&mut app, KeyCode::Char('n'));
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    for _ in 0..149 {
        press(&mut app, KeyCode::Char('N'));
    }
    press(&mut app, KeyCode::Char('Z'));
    let (rows, (x, y)) = rows_and_cursor(&mut draw(&app, 80, 24));
    let text = rows.join("\n");
    let named: Vec<_> = rows.iter().filter(|r| r.contains("NNNN")).collect();
    assert_eq!(named.len(), 1, "the value takes one row: {text}");
    let row = named[0];
    assert!(
        row.contains("▶ name") && row.contains("[…NNN") && row.contains("NZ ]"),
        "{text}"
    );
    assert!(text.contains("Tab/↑↓ field"), "the key hint stays: {text}");
    assert_eq!(y, rows.iter().position(|r| r == row).unwrap(), "{text}");
    assert_eq!(x, column(row, "]") - 1, "the cursor follows the Z: {text}");
    // Home brings the start back, the cursor on the first character.
    press(&mut app, KeyCode::Home);
    let (rows, (x, y)) = rows_and_cursor(&mut draw(&app, 80, 24));
    assert!(
        rows[y].contains("[NNNN") && !rows[y].contains('…'),
        "{rows:?}"
    );
    assert_eq!(x, column(&rows[y], "[") + 1);

    // The command line.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char(':'));
    for c in "user show ".chars().chain(std::iter::repeat_n('x', 100)) {
        press(&mut app, KeyCode::Char(c));
    }
    let (rows, (x, y)) = rows_and_cursor(&mut draw(&app, 80, 24));
    assert!(rows[y].contains(":…xxx"), "{rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r.contains("xxxx")).count(),
        1,
        "{rows:?}"
    );
    assert_eq!(x, column(&rows[y], "xxx") + rows[y].matches('x').count());

    // The list filter, with the sort and counts still beside it.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('/'));
    for _ in 0..100 {
        press(&mut app, KeyCode::Char('q'));
    }
    let (rows, (x, y)) = rows_and_cursor(&mut draw(&app, 80, 24));
    assert!(
        rows[y].contains("/…qqq") && rows[y].contains("sort email"),
        "{rows:?}"
    );
    assert_eq!(x, column(&rows[y], "qqq") + rows[y].matches('q').count());
}

#[test]
fn help_fits_at_80x24_on_every_screen() {
    for s in super::screens::SCREENS.iter().map(|d| d.id) {
        let mut app = fixture::app(s, (80, 24), OperatorRole::Admin);
        press(&mut app, KeyCode::Char('?'));
        let text = screen_text(&draw(&app, 80, 24));
        // The first and the last global binding, and the foot.
        for want in [
            "switch screen",
            "C-z suspend (fg resumes)",
            "any key closes",
        ] {
            assert!(text.contains(want), "{s:?}: {want:?} missing:\n{text}");
        }
    }
}

/// Until its first answer a small list says it is counting, not that it is empty.
#[test]
fn small_lists_do_not_say_zero_before_they_are_loaded() {
    let mut app = unanswered();
    for (key, title) in [
        ('3', "Roles (…)"),
        ('6', "Developer apps (…)"),
        ('8', "Signing keys (…)"),
        ('9', "Operators (…)"),
    ] {
        press(&mut app, KeyCode::Char(key));
        let text = screen_text(&draw(&app, 80, 24));
        assert!(text.contains(title), "{title} missing:\n{text}");
    }
    let app = fixture::app(ScreenId::SigningKeys, (80, 24), OperatorRole::Admin);
    let text = screen_text(&draw(&app, 80, 24));
    assert!(!text.contains("Signing keys (…)"), "{text}");
}

#[test]
fn a_long_note_wraps_under_itself_and_an_error_saying_the_same_replaces_it() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Admin);
    app.run_command("config", "");
    app.update(Action::Loaded(Loaded::Settings(Ok(vec![
        keyward::store::directory::SettingRow {
            key: "issuer".into(),
            value: "http://127.0.0.1:8080".into(),
            updated_at: NOW,
            version: 1,
        },
    ]))));
    press(&mut app, KeyCode::Enter);
    let note = keyward::service::settings::describe("issuer");
    let rows: Vec<String> = screen_text(&draw(&app, 80, 24))
        .lines()
        .map(str::to_string)
        .collect();
    // The note's further rows start where its first does, not at the popup's edge.
    let first = rows.iter().position(|r| r.contains("the `iss`")).unwrap();
    let start = column(&rows[first], "the `iss`");
    assert!(note.chars().count() > 66, "a note that wraps: {note}");
    let next = rows[first + 1].chars().position(char::is_alphanumeric);
    assert_eq!(next, Some(start), "{rows:#?}");
    for _ in 0.."http://127.0.0.1:8080".len() {
        press(&mut app, KeyCode::Backspace);
    }
    for c in "ftp://x y".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    let t = draw(&app, 80, 24);
    let text = screen_text(&t);
    assert_eq!(text.matches("the `iss`").count(), 1, "said once: {text}");
    assert!(text.contains("✗ the `iss`"), "{text}");
    insta::assert_snapshot!("form_setting_invalid", t.backend());
}

#[test]
fn a_long_result_takes_two_rows_and_a_longer_one_is_cut_with_an_ellipsis() {
    let mut app = fixture::app(ScreenId::Users, (80, 24), OperatorRole::Admin);
    app.toast(
        "reviewer1@example.test now has role Consumer; revoked 1 token(s) and trimmed 1 key(s) that exceeded the new scopes",
    );
    let text = screen_text(&draw(&app, 80, 24));
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[22].contains("» reviewer1@example.test now has role Consumer"),
        "{text}"
    );
    assert!(rows[23].contains("exceeded the new scopes"), "{text}");
    app.toast("word ".repeat(60));
    let text = screen_text(&draw(&app, 80, 24));
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[23].trim_end_matches([' ', '"']).ends_with('…'),
        "{text}"
    );
    // A short one leaves the status bar in place.
    app.toast("saved");
    let text = screen_text(&draw(&app, 80, 24));
    assert!(text.lines().nth(23).unwrap().contains("?help"), "{text}");
}

#[test]
fn checklists_and_choices_break_between_items_never_inside_one() {
    use super::widgets::form::{Field, Form};
    let mut app = fixture::app(ScreenId::Roles, (80, 24), OperatorRole::Admin);
    let scopes = [
        "admin",
        "read",
        "receive_documents",
        "reports.view",
        "send_documents",
        "write",
        "billing.export",
        "audit.read",
    ];
    let users = [
        "farid.meyer6@globex.example",
        "hiro.novak7@umbrella.example",
        "jonas.horvat4@acme.example",
    ];
    let form = Form::new(
        "New role",
        vec![
            Field::checks(
                "scopes",
                scopes.iter().map(|s| (s.to_string(), false)).collect(),
            ),
            Field::choice("user", users.iter().map(|s| s.to_string()).collect(), 0),
        ],
    );
    app.overlay = Some(super::app::Overlay::Form {
        kind: super::app::FormKind::NewRole,
        form,
    });
    let text = screen_text(&draw(&app, 80, 24));
    for s in scopes {
        assert!(text.contains(&format!("[ ] {s}")), "{s}:\n{text}");
    }
    for (i, u) in users.iter().enumerate() {
        let mark = if i == 0 { "•" } else { " " };
        assert!(text.contains(&format!("({mark}) {u}")), "{u}:\n{text}");
    }
    // Continuation rows start under the first item, not at the pop-up's edge.
    let rows: Vec<&str> = text.lines().collect();
    let first = rows.iter().position(|r| r.contains("[ ] admin")).unwrap();
    let col = column(rows[first], "[ ] admin");
    assert_eq!(
        rows[first + 1].chars().position(|c| c == '['),
        Some(col),
        "{text}"
    );
}

#[test]
fn the_waiting_list_scrolls_with_the_highlight() {
    let mut app = fixture::app(ScreenId::Dashboard, (80, 24), OperatorRole::Admin);
    let users = fixture::users();
    if let Some(d) = app.dash.as_mut() {
        d.pending_users = (0..20)
            .map(|i| {
                let mut u = users[i % users.len()].clone();
                u.email = format!("waiting{i:02}@example.com");
                u
            })
            .collect();
        d.pending = 20;
    }
    for _ in 0..14 {
        press(&mut app, KeyCode::Char('j'));
    }
    let text = screen_text(&draw(&app, 80, 24));
    let row = text
        .lines()
        .find(|r| r.contains('▶'))
        .unwrap_or_else(|| panic!("the highlight is in view:\n{text}"));
    assert!(row.contains("waiting14@"), "{row}");
    assert!(!text.contains("waiting00@"), "scrolled: {text}");
}

#[test]
fn whole_lists_scroll_to_keep_the_highlight_in_view() {
    let mut app = fixture::app(ScreenId::Apps, (80, 24), OperatorRole::Admin);
    let one = app.apps.items[0].clone();
    app.apps.items = (0..40)
        .map(|i| keyward::store::credentials::AppRow {
            id: format!("a{i}"),
            client_id: format!("kwa_app{i:02}"),
            ..one.clone()
        })
        .collect();
    let selected = |app: &App| {
        let text = screen_text(&draw(app, 80, 24));
        text.lines()
            .find(|l| l.contains('▶'))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no highlighted row on screen:\n{text}"))
    };
    press(&mut app, KeyCode::Char('G'));
    assert!(selected(&app).contains("kwa_app39"), "{}", selected(&app));
    for _ in 0..25 {
        press(&mut app, KeyCode::Char('k'));
    }
    assert!(selected(&app).contains("kwa_app14"), "{}", selected(&app));
    press(&mut app, KeyCode::Char('g'));
    assert!(selected(&app).contains("kwa_app00"), "{}", selected(&app));
    // The same on Signing keys, which gain a row with every rotation.
    let mut app = fixture::app(ScreenId::SigningKeys, (80, 24), OperatorRole::Admin);
    let one = app.signing.items[0].clone();
    app.signing.items = (0..30)
        .map(|i| keyward::service::keyring::SigningKeyView {
            kid: format!("kid-{i:02}"),
            ..one.clone()
        })
        .collect();
    press(&mut app, KeyCode::Char('G'));
    assert!(selected(&app).contains("kid-29"), "{}", selected(&app));
}

#[test]
fn a_cut_cell_ends_in_an_ellipsis_within_its_columns() {
    use super::ui::fit;
    assert_eq!(fit("Administrator", 9), "Administ…");
    assert_eq!(fit("Consumer", 9), "Consumer");
    // Display columns, not characters: a wide letter is two.
    assert_eq!(fit("日本語テキスト", 5), "日本…");
    assert_eq!(fit("abc", 0), "");
}

#[test]
fn tokens_sorted_by_expiry_show_the_expiry() {
    let mut app = fixture::app(ScreenId::Tokens, (80, 24), OperatorRole::Admin);
    assert!(screen(&app).contains(" ISSUED "));
    press(&mut app, KeyCode::Char('s'));
    let text = screen(&app);
    assert!(
        text.contains(" EXPIRES ") && !text.contains(" ISSUED "),
        "{text}"
    );
}
