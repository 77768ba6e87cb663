//! `moat delete`: remove a stopped container (and with --force, a running one).

use runtime::container::RuntimeError;
use runtime::state::StateError;

use super::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Kill the container first if it still runs.
    #[arg(long, short = 'f')]
    pub force: bool,
    pub id: String,
}

pub fn run(global: &Global, a: DeleteArgs) -> i32 {
    with_runtime(global, |r| match r.delete(&a.id, a.force) {
        Ok(()) => Ok(0),
        // runc: deleting a container that does not exist with --force is not an error.
        Err(RuntimeError::State(StateError::NotExist { .. })) if a.force => Ok(0),
        Err(e) => Err(e.into()),
    })
}
