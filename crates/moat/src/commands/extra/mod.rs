//! runc's commands beyond the OCI standard ones, which Docker, containerd
//! and people use: run, exec, ps, list, events, pause, resume, update,
//! spec, features, install; and `boot`, the sandbox process moat starts itself.

pub mod boot;
pub mod events;
pub mod exec;
pub mod features;
pub mod install;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod update;
