//! The command line: runc-compatible global flags and commands. One file per command; each
//! exposes `run(&Global, Args) -> Result<i32>` returning the process exit code.
use std::path::PathBuf;

use crate::container::process_io::ProcessIo;
use crate::log::LogFormat;
use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod argv;
pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod output;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod unpack;
pub mod update;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "An OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Print the version (runc's format).
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// runc's global flags, read before the command only, as runc and crun read them (a flag
/// after the command is a usage error there and here). They are not clap `global` args:
/// clap copies those into every subcommand and back out of its matches, which was half the
/// instructions of parsing a `run` line (bench/callgrind.sh).
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Directory holding container state (default: /run/berth; $XDG_RUNTIME_DIR/berth for an
    /// unprivileged caller, or for a non-root $USER in a user namespace, as runc does).
    #[arg(long, default_value_os_t = default_root())]
    pub root: PathBuf,
    /// Write log lines to this file instead of stderr.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Log line format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug lines too.
    #[arg(long)]
    pub debug: bool,
    /// Interpret cgroupsPath as systemd's slice:prefix:name.
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (auto: rootless when not running as root, or when
    /// running as root in a user namespace, as under rootless podman).
    /// Given before the command, as with runc (`spec --rootless` is spec's own flag).
    #[arg(long, default_value = "auto")]
    pub rootless: Rootless,
    /// The criu binary for checkpoint and restore (a bare name is looked up in PATH).
    #[arg(long, default_value = "criu")]
    pub criu: PathBuf,
}

impl Global {
    /// Whether this invocation runs rootless.
    pub fn is_rootless(&self) -> bool {
        match self.rootless {
            Rootless::True => true,
            Rootless::False => false,
            Rootless::Auto => {
                !nix::unistd::geteuid().is_root() || crate::process::namespaces::in_user_namespace()
            }
        }
    }
}

/// runc's default state root: `$XDG_RUNTIME_DIR/berth` when the caller is unprivileged, or
/// root in a user namespace with a `$USER` other than root (a rootless engine's namespace);
/// otherwise /run/berth.
pub(crate) fn default_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty());
    let honour = !nix::unistd::geteuid().is_root()
        || (crate::process::namespaces::in_user_namespace()
            && std::env::var("USER").map_or(true, |u| u != "root"));
    match xdg {
        Some(x) if honour => PathBuf::from(x).join("berth"),
        _ => PathBuf::from("/run/berth"),
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rootless {
    True,
    False,
    Auto,
}

/// `defer`: a subcommand's arguments are built only when it is the one invoked (clap builds
/// the whole tree otherwise: a fifth of `berth state`'s instructions, bench/callgrind.sh).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Create a container (it waits for `start`).
    Create(create::CreateArgs),
    /// Start a created container.
    Start(start::StartArgs),
    /// Print a container's state as JSON.
    State(state::StateArgs),
    /// Send a signal to a container's init (or every process with --all).
    Kill(kill::KillArgs),
    /// Delete a container and what it holds.
    Delete(delete::DeleteArgs),
    /// Create and start a container.
    Run(run::RunArgs),
    /// Freeze every process of a container.
    Pause(pause::PauseArgs),
    /// Thaw a paused container.
    Resume(pause::PauseArgs),
    /// List a container's processes.
    Ps(ps::PsArgs),
    /// Checkpoint a running container with criu. A flag given twice is taken once, as
    /// runc's parser does (podman passes `--leave-running` twice for `--leave-running`).
    #[command(args_override_self = true)]
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a criu checkpoint.
    #[command(args_override_self = true)]
    Restore(restore::RestoreArgs),
    /// Change a running container's cgroup limits.
    Update(update::UpdateArgs),
    /// A container's resource usage (and OOM kills) as JSON lines.
    Events(events::EventsArgs),
    /// Run another process in a container.
    Exec(exec::ExecArgs),
    /// List containers.
    #[command(alias = "ls")]
    List(list::ListArgs),
    /// Write a starter config.json.
    Spec(spec::SpecArgs),
    /// Print the features this runtime honours (runtime-spec features document).
    Features(features::FeaturesArgs),
    /// Unpack a layered OCI image into a runtime bundle.
    Unpack(unpack::UnpackArgs),
}

// Container creation options shared by `create` and `run`. A plain comment: clap would make a
// doc comment the about text of `create` and `run` (their subcommands are deferred).
#[derive(Args, Debug, Clone)]
pub struct CreateOpts {
    /// Bundle directory (config.json + rootfs); default: the current directory.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub io: IoOpts,
    /// Do not use pivot_root (for a rootfs on a ramdisk).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// The container id.
    pub id: String,
}

// What `create`, `run` and `exec` hand the new process (for create and run, the
// container's init) besides its config. A plain comment: a doc comment on a flattened Args
// struct would become the about text of the subcommand.
#[derive(Args, Debug, Clone)]
pub struct IoOpts {
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the new process's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the new process.
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Pass this many fds above stdio (3..3+N) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

impl IoOpts {
    /// `keep_console`: a foreground caller without a console socket keeps the pty master.
    pub fn process_io(&self, keep_console: bool) -> ProcessIo<'_> {
        ProcessIo {
            console_socket: self.console_socket.as_deref(),
            pid_file: self.pid_file.as_deref(),
            pidfd_socket: self.pidfd_socket.as_deref(),
            preserve_fds: self.preserve_fds,
            keep_console,
        }
    }
}

/// `berth --version`, in the form go-runc parses.
pub fn version_text() -> String {
    format!(
        "berth version {}\ncommit: {}\nspec: {}\n",
        crate::VERSION,
        crate::COMMIT,
        crate::spec::OCI_VERSION
    )
}

/// The exit code of a command that fails: 1, as runc's; `exec` gives 255, as runc's does,
/// so that a caller can tell the runtime's failure from the process's own exit code.
pub fn error_exit_code(cli: &Cli) -> i32 {
    match cli.command {
        Some(Command::Exec(_)) => 255,
        _ => 1,
    }
}

/// Report a command line clap refused as runc (urfave/cli) reports it; returns the exit
/// code. Help and version go to stdout (0). An unknown command is "No help topic for
/// 'foo'" (3). Any other usage error is an error line on stderr and the usage on stdout (1).
pub fn usage_error(e: clap::Error, cmd: &mut clap::Command) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return 0;
        }
        ErrorKind::InvalidSubcommand => {
            if let Some(ContextValue::String(name)) = e.get(ContextKind::InvalidSubcommand) {
                crate::log::fatal(&format!("No help topic for '{name}'"));
                return 3;
            }
        }
        _ => {}
    }
    let text = e.format(cmd).render().to_string();
    let (head, usage) = text.split_once("\n\n").unwrap_or((&text, ""));
    crate::log::fatal(head.trim_start_matches("error: ").trim());
    // Usage text is best effort: the error line above is what matters.
    let _ = output::print(&format!("Incorrect Usage.\n\n{usage}"));
    1
}

/// Dispatch a parsed command line; returns the exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let g = cli.global;
    let Some(cmd) = cli.command else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(0);
    };
    match cmd {
        Command::Create(a) => create::run(&g, a),
        Command::Start(a) => start::run(&g, a),
        Command::State(a) => state::run(&g, a),
        Command::Kill(a) => kill::run(&g, a),
        Command::Delete(a) => delete::run(&g, a),
        Command::Run(a) => run::run(&g, a),
        Command::Events(a) => events::run(&g, a),
        Command::Exec(a) => exec::run(&g, a),
        Command::List(a) => list::run(&g, a),
        Command::Pause(a) => pause::pause(&g, a),
        Command::Resume(a) => pause::resume(&g, a),
        Command::Ps(a) => ps::run(&g, a),
        Command::Update(a) => update::run(&g, a),
        Command::Checkpoint(a) => checkpoint::run(&g, a),
        Command::Restore(a) => restore::run(&g, a),
        Command::Spec(a) => spec::run(&g, a),
        Command::Features(a) => features::run(&g, a),
        Command::Unpack(a) => unpack::run(&g, a),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// A subcommand's own help starts with the line `berth --help` lists for it: with the
    /// subcommands deferred, a doc comment on a shared Args struct would replace it.
    #[test]
    fn subcommand_help_keeps_the_listed_about() {
        let listed = super::Cli::command();
        let mut built = super::Cli::command();
        built.build();
        for sc in listed.get_subcommands() {
            let b = built.find_subcommand(sc.get_name()).unwrap();
            assert_eq!(
                b.get_about().map(ToString::to_string),
                sc.get_about().map(ToString::to_string),
                "{}",
                sc.get_name()
            );
        }
    }
}
