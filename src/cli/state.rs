//! `berth state ID`: the OCI state document, as runc prints it.
use anyhow::{Context, Result};
use clap::Args;

use super::Global;
use crate::container::Container;

#[derive(Args, Debug)]
pub struct StateArgs {
    pub id: String,
}

pub fn run(g: &Global, a: StateArgs) -> Result<i32> {
    let c = Container::load(&g.root, &a.id).with_context(|| format!("state {}", a.id))?;
    let text = serde_json::to_string_pretty(&c.oci_state())?;
    // runc writes the document without a newline after it.
    super::output::print(&crate::container::state::go_json_escape(&text))?;
    Ok(0)
}
