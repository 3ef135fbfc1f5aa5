//! The `keyward` binary: the console (no subcommand), the CLI and the token service.

mod cli;
mod server;
mod tui;

/// mimalloc instead of glibc's allocator: the token service allocates and frees small
/// buffers on two threads at a high rate, where glibc's arenas cost it ~15 % of its CPU
/// time (measured with `perf`); see README "Token service".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cli::parse_args();
    let js = cli.json;
    if cli
        .command
        .as_ref()
        .is_some_and(|c| !matches!(c, cli::args::Command::Serve { .. }))
    {
        // A command's output piped into `head` ends quietly when the reader goes, as
        // with any Unix tool, instead of panicking on the broken pipe (Rust ignores
        // SIGPIPE by default). The token service keeps ignoring it: a client closing
        // its connection must not stop the server.
        // SAFETY: no other thread exists yet, and SIG_DFL installs no handler.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        if cli.command.is_none() {
            return console(cli.database_url.as_deref(), js).await;
        }
        match cli::run(cli).await {
            Ok(()) => 0,
            Err(f) => cli::report(&f, js),
        }
    });
    std::process::exit(code);
}

/// `keyward` without a subcommand: the full-screen console on the same database
/// (the embedded default is initialised implicitly, as for any command).
async fn console(url: Option<&str>, js: bool) -> i32 {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return cli::report(
            &cli::Failure::Usage(
                "the console needs a terminal; see `keyward --help` for the CLI".into(),
            ),
            js,
        );
    }
    let (kw, actor) = match cli::open(url, false).await {
        Ok(v) => v,
        Err(f) => return cli::report(&f, js),
    };
    let out = tui::run(kw.clone(), actor).await;
    // The terminal is already restored; a read still running (a count over a large
    // table) must not hold the operator's shell for long.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), kw.db().close()).await;
    match out {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: the console failed: {e}");
            1
        }
    }
}
