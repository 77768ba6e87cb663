//! Credentials: user and group ids, capabilities, and the identity of the app
//! thread a host thread serves. Everything above asks here who the caller is.

pub mod capability;
mod creds;

pub use capability::CapSets;
pub use creds::{current, set_current, Creds};
