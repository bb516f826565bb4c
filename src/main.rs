//! The berth command. It starts at the C entry point, without the Rust runtime's start-up:
//! that start-up reads /proc/self/maps to find the main thread's stack and sets up an
//! alternate signal stack, a tenth of the work of `berth --version` (bench/callgrind.sh).
//! What berth needs from it, `sys::process::runtime_start` does.
//! The unit-test build of this binary keeps the test harness's own `main` (it has no tests).
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use clap::{CommandFactory, FromArgMatches};

/// Small allocations from a bump arena (`sys::arena`): a berth command is short-lived. `run`
/// uses 150 KB of it.
#[cfg(not(test))]
#[global_allocator]
static ALLOC: berth::sys::arena::Arena<{ 512 << 10 }> = berth::sys::arena::Arena::new();

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
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.version {
        return match berth::cli::output::print(&berth::cli::version_text()) {
            Ok(()) => 0,
            Err(_) => 1,
        };
    }
    let g = &cli.global;
    if let Err(e) = berth::log::init(g.log.as_deref(), g.log_format, g.debug) {
        berth::log::fatal(&format!("{e:#}"));
        return 1;
    }
    let failed = berth::cli::error_exit_code(&cli);
    match berth::cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // As runc's fatal: the logrus-style line to the log (stderr without --log), and
            // with --log the plain message on stderr too.
            berth::log::fatal(&format!("{e:#}"));
            failed
        }
    }
}

/// `Cli::parse()`, except that the clap command tree is not dropped: the process ends soon,
/// and freeing every argument of every subcommand one by one took about 90,000 instructions
/// of each command (bench/callgrind.sh). A command line clap refuses is reported as runc
/// reports it (`cli::usage_error`); the error is the exit code.
fn parse_args() -> Result<berth::cli::Cli, i32> {
    let mut cmd = berth::cli::Cli::command();
    let args = berth::cli::argv::go_style_long_flags(&cmd, std::env::args_os().collect());
    let parsed = cmd
        .try_get_matches_from_mut(args)
        .and_then(|mut m| berth::cli::Cli::from_arg_matches_mut(&mut m));
    let result = parsed.map_err(|e| berth::cli::usage_error(e, &mut cmd));
    std::mem::forget(cmd);
    result
}
