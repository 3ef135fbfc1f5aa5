//! The full-screen console (`keyward` without a subcommand).
//!
//! Elm-like: a terminal event becomes an [`app::Action`], [`app::App::update`] changes
//! plain state and returns [`app::Effect`]s, which [`tasks`] runs as tokio tasks whose
//! answers come back as actions over a channel; [`ui::render`] draws the state. The
//! terminal is restored on quit, on error, on panic and on SIGTERM/SIGHUP.

pub mod app;
#[cfg(test)]
pub mod fixture;
pub mod fmt;
pub mod keymap;
pub mod screens;
pub mod tasks;
pub mod theme;
pub mod ui;
pub mod widgets;

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod snapshot_tests;

use app::{Action, App, Info};
use futures_util::StreamExt;
use keyward::{Actor, Keyward};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{DisableBracketedPaste, EnableBracketedPaste, Event, EventStream};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use std::io::{self, Stdout};
use std::time::Duration;
use tokio::sync::mpsc;

/// Leaves the alternate screen and raw mode; safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

fn setup() -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    take_terminal()?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Raw mode and a fresh alternate screen, cleared without asking the terminal for its
/// cursor position (`Terminal::clear` would, and some terminals never answer).
fn take_terminal() -> io::Result<()> {
    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        Clear(ClearType::All),
        EnableBracketedPaste
    )
}

/// Runs the console until the operator quits.
pub async fn run(kw: Keyward, actor: Actor) -> io::Result<()> {
    let mut term = setup()?;
    let out = event_loop(&mut term, kw, actor).await;
    restore();
    out
}

/// Suspends the console on Ctrl-Z (which the terminal in raw mode passes on as a key
/// instead of stopping us) as job control expects of a terminal program (`fg` resumes
/// it): the screen cleared (nothing shown, a secret included, stays behind), the
/// terminal restored, the process stopped with SIGTSTP; once continued, the console
/// takes the terminal again and is drawn anew (the terminal may have been resized or
/// written to meanwhile). Where nothing stops the process (SIGTSTP ignored) it just
/// comes back.
fn suspend(term: &mut Terminal<CrosstermBackend<Stdout>>) -> io::Result<()> {
    execute!(io::stdout(), Clear(ClearType::All))?;
    restore();
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGTSTP).map_err(io::Error::from)?;
    take_terminal()?;
    term.autoresize()?;
    // An empty frame: the terminal is blank now, and the next frame, diffed against
    // this one, draws every cell again.
    term.draw(|_| {})?;
    Ok(())
}

async fn event_loop(
    term: &mut Terminal<CrosstermBackend<Stdout>>,
    kw: Keyward,
    actor: Actor,
) -> io::Result<()> {
    let size = term.size()?;
    let mut app = App::new(
        actor.clone(),
        Info {
            database: kw.describe(),
        },
        keyward::model::now(),
        (size.width, size.height),
    );
    let (tx, mut rx) = mpsc::unbounded_channel::<Action>();
    for e in app.start() {
        tasks::spawn(&kw, &actor, e, &tx);
    }
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(app::TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term_sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup_sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut dirty = true;
    let mut last_spin = 0u64;
    loop {
        if dirty {
            term.draw(|f| ui::render(&app, f))?;
            dirty = false;
        }
        let action = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => Action::Key(k),
                Some(Ok(Event::Paste(s))) => Action::Paste(s),
                Some(Ok(Event::Resize(w, h))) => {
                    term.autoresize()?;
                    Action::Resize(w, h)
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => break,
            },
            Some(a) = rx.recv() => a,
            _ = tick.tick() => Action::Tick { now: keyward::model::now() },
            _ = term_sig.recv() => break,
            _ = hup_sig.recv() => break,
        };
        let is_tick = matches!(action, Action::Tick { .. });
        let toast_before = app.toast.is_some();
        for e in app.update(action) {
            tasks::spawn(&kw, &actor, e, &tx);
        }
        if app.quit {
            break;
        }
        if app.suspend {
            app.suspend = false;
            suspend(term)?;
            dirty = true;
            continue;
        }
        // Ticks redraw only when something animates or changes.
        dirty = !is_tick || app.busy() || toast_before != app.toast.is_some() || {
            let s = app.tick / 20;
            let changed = s != last_spin;
            last_spin = s;
            changed
        };
    }
    Ok(())
}
