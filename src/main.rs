//! The `keyward` binary: the console (no subcommand), the CLI and the token service.

mod cli;
mod server;

use clap::Parser;

fn main() {
    let cli = cli::args::Cli::parse();
    let js = cli.json;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        if cli.command.is_none() {
            eprintln!("The console is not built yet; see `keyward --help` for the CLI.");
            return 2;
        }
        match cli::run(cli).await {
            Ok(()) => 0,
            Err(f) => cli::report(&f, js),
        }
    });
    std::process::exit(code);
}
