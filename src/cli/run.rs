//! `berth run`: create + start. In the foreground it forwards signals to the init, copies a
//! terminal if there is one, waits, deletes the container (unless --keep) and exits with
//! the container's status (128+n for a signal).
use anyhow::{bail, Context, Result};
use clap::Args;

use super::{CreateOpts, Global};
use crate::container::{delete, start, Container};
use crate::process::foreground;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Detach: return once the container has started.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits (foreground only).
    #[arg(long)]
    pub keep: bool,
}

pub fn run(g: &Global, a: RunArgs) -> Result<i32> {
    let id = a.opts.id.clone();
    let ctx = || format!("run {id}");
    if a.detach && a.keep {
        bail!("run {id}: --keep has no effect with --detach");
    }
    let keep_console = !a.detach && a.opts.io.console_socket.is_none();
    // (With --detach and a terminal but no console socket, create refuses: the pty would be
    // nobody's once we return.)
    // Block the signals we forward before the init exists, so none is lost; the init
    // resets its mask first thing.
    let sigs = foreground::handled_signals();
    if !a.detach {
        foreground::block(&sigs)?;
    }
    let created =
        crate::container::create::create(&super::create::request(g, &a.opts, keep_console))
            .with_context(ctx)?;
    if let Err(e) = start::start(&created.container) {
        let _ = delete::delete(created.container, true);
        return Err(e).with_context(ctx);
    }
    if a.detach {
        return Ok(0);
    }
    let pid = created.pid;
    // Release the lock while we wait: `state`, `kill` and `exec` must work meanwhile.
    let config = created.container.into_config();
    let code = foreground::forward_and_wait(pid, created.console, &sigs).with_context(ctx)?;
    if !a.keep {
        let c = Container::load(&g.root, &id).with_context(ctx)?;
        if let Some(spec) = config {
            c.set_config(spec);
        }
        delete::delete(c, true).with_context(ctx)?;
    }
    Ok(code)
}
