//! The `control-plane` binary: `migrate`, `serve`, `worker`, `all`, `dev` or `keys`, and the
//! client commands `submit`, `jobs` and `artifacts`.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use control_plane::config::{Cli, Command};
use control_plane::{app, client, telemetry};

// glibc's allocator took a tenth of the service's CPU under load (many small, short-lived
// allocations across threads: requests, rows, JSON); mimalloc serves them from per-thread
// pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                // One clear line naming the setting, not a page of usage.
                let text = e.to_string();
                let line = text.lines().next().unwrap_or("error: invalid arguments");
                eprintln!("{line}");
                return ExitCode::from(2);
            }
        },
    };
    let answers_on_stdout =
        cli.command.is_client() || matches!(cli.command, Command::Keys(_) | Command::Probe);
    if let Err(e) = telemetry::init(
        cli.settings.log_format,
        &cli.settings.log_filter,
        answers_on_stdout,
    ) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    raise_descriptor_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Submit(args) => return runtime.block_on(client::submit(args)),
        Command::Jobs(command) => return runtime.block_on(client::jobs(command)),
        Command::Artifacts(command) => return runtime.block_on(client::artifacts(command)),
        _ => {}
    }
    match runtime.block_on(app::run(cli.command, cli.settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the open-file limit to its hard ceiling: every connection, browser pipe and
/// database socket is a descriptor, and the usual soft default (1,024) is far below what a
/// busy API needs. The API caps its connections below whatever this leaves.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
