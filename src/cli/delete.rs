//! `berth delete [--force] ID`.
use anyhow::{Context, Result};
use clap::Args;

use super::Global;
use crate::container::{delete, Container};

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

pub fn run(g: &Global, a: DeleteArgs) -> Result<i32> {
    let ctx = || format!("delete {}", a.id);
    crate::container::state::check_id(&a.id).with_context(ctx)?;
    let c = match Container::load(&g.root, &a.id) {
        Ok(c) => c,
        // runc: `delete --force` of a missing container succeeds quietly.
        Err(_) if a.force && !g.root.join(&a.id).exists() => return Ok(0),
        // A create killed before it recorded the container left only its directory.
        Err(_) if a.force && crate::container::state::remove_orphan(&g.root, &a.id)? => {
            return Ok(0)
        }
        Err(e) => return Err(e).with_context(ctx),
    };
    delete::delete(c, a.force).with_context(ctx)?;
    Ok(0)
}
