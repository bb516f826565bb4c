//! `berth create`: build the container and leave its init waiting for `start`.
use anyhow::{Context, Result};
use clap::Args;

use super::{CreateOpts, Global};
use crate::container::create::{create, CreateRequest};

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: CreateOpts,
}

/// The request for `create` and `run`.
pub fn request<'a>(g: &'a Global, o: &'a CreateOpts, keep_console: bool) -> CreateRequest<'a> {
    CreateRequest {
        root: &g.root,
        id: &o.id,
        bundle: &o.bundle,
        io: o.io.process_io(keep_console),
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        systemd_cgroup: g.systemd_cgroup,
        rootless: g.is_rootless(),
    }
}

pub fn run(g: &Global, a: CreateArgs) -> Result<i32> {
    create(&request(g, &a.opts, false)).with_context(|| format!("create {}", a.opts.id))?;
    Ok(0)
}
