//! `berth pause ID` and `berth resume ID`: freeze and thaw every process of a container.
use anyhow::{Context, Result};
use clap::Args;

use super::Global;
use crate::container::{pause, Container};

#[derive(Args, Debug)]
pub struct PauseArgs {
    pub id: String,
}

pub fn pause(g: &Global, a: PauseArgs) -> Result<i32> {
    let c = Container::load(&g.root, &a.id).with_context(|| format!("pause {}", a.id))?;
    pause::pause(&c).with_context(|| format!("pause {}", a.id))?;
    Ok(0)
}

pub fn resume(g: &Global, a: PauseArgs) -> Result<i32> {
    let c = Container::load(&g.root, &a.id).with_context(|| format!("resume {}", a.id))?;
    pause::resume(&c).with_context(|| format!("resume {}", a.id))?;
    Ok(0)
}
