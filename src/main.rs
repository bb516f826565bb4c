//! The berth command. It starts at the C entry point, without the Rust runtime's start-up:
//! that start-up reads /proc/self/maps to find the main thread's stack and sets up an
//! alternate signal stack, a tenth of the work of `berth --version` (bench/callgrind.sh).
//! What berth needs from it, `sys::process::runtime_start` does.
//! The unit-test build of this binary keeps the test harness's own `main` (it has no tests).
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use clap::{CommandFactory, FromArgMatches};

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    berth::sys::process::runtime_start();
    // std::process::exit, not a return: it flushes stdout.
    std::process::exit(run())
}

fn run() -> i32 {
    let cli = parse_args();
    if cli.version {
        print!("{}", berth::cli::version_text());
        return 0;
    }
    let g = &cli.global;
    let to_file = g.log.is_some();
    if let Err(e) = berth::log::init(g.log.as_deref(), g.log_format, g.debug) {
        eprintln!("berth: {e:#}");
        return 1;
    }
    match berth::cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // The log file gets the logrus-style line engines read; a person gets one plain line.
            let msg = format!("{e:#}");
            if to_file {
                tracing::error!("{msg}");
            }
            eprintln!("berth: {msg}");
            1
        }
    }
}

/// `Cli::parse()`, except that the clap command tree is not dropped: the process ends soon,
/// and freeing every argument of every subcommand one by one took about 90,000 instructions
/// of each command (bench/callgrind.sh).
fn parse_args() -> berth::cli::Cli {
    let mut cmd = berth::cli::Cli::command();
    let mut matches = cmd.get_matches_mut();
    let cli = berth::cli::Cli::from_arg_matches_mut(&mut matches)
        .unwrap_or_else(|e| e.format(&mut cmd).exit());
    std::mem::forget(cmd);
    cli
}
