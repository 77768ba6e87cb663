//! `moat pause` and `moat resume`: freeze and thaw every host process of a
//! container (the sandbox process, Gofers and stubs) through its cgroup.

use runtime::state::Status;

use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    pub id: String,
}

pub fn pause(global: &Global, a: PauseArgs) -> i32 {
    with_runtime(global, |r| {
        r.cgroup(&a.id)?.freeze()?;
        r.set_status(&a.id, Status::Paused)?;
        Ok(0)
    })
}

pub fn resume(global: &Global, a: PauseArgs) -> i32 {
    with_runtime(global, |r| {
        r.cgroup(&a.id)?.thaw()?;
        r.set_status(&a.id, Status::Running)?;
        Ok(0)
    })
}
