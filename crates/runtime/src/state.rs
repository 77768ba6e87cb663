//! Container state under the runtime root (`--root`, default `/run/moat`):
//! one directory per container holding `state.json` and the control socket.
//!
//! `state.json` is the OCI state document, shaped exactly as `runc state`
//! prints it, so what `moat state` prints is the file as saved.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::{Pid, Uid, User};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use abi::time::format_rfc3339;

use crate::bundle::Bundle;

/// The default runtime root.
pub const DEFAULT_ROOT: &str = "/run/moat";

/// The longest container ID accepted, as in runc.
pub const MAX_ID_LEN: usize = 1024;

const STATE_FILE: &str = "state.json";
const CONTROL_SOCKET: &str = "control.sock";

/// A container's status, as the OCI runtime spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created: the sandbox is starting.
    Creating,
    /// Created: the sandbox is up, the container process has not started.
    Created,
    /// The container process is running.
    Running,
    /// Paused by `moat pause`.
    Paused,
    /// The container process has exited.
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The OCI state of a container. Serialized, it has the keys and key order
/// of `runc state`: `annotations` is left out when empty and `pid` is 0 when
/// there is no process, as runc does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The OCI runtime spec version the state follows.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container ID.
    pub id: String,
    /// The sandbox process (`moat boot`), a host pid; `None` once stopped.
    #[serde(serialize_with = "pid_to_json", deserialize_with = "pid_from_json")]
    pub pid: Option<i32>,
    /// Where the container is in its life.
    pub status: Status,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    /// When the container was created, RFC 3339 in UTC.
    pub created: String,
    /// The bundle's annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Empty in `state.json`, as runc writes it; `list_entries` fills it in.
    pub owner: String,
}

fn pid_to_json<S: Serializer>(pid: &Option<i32>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_i32(pid.unwrap_or(0))
}

/// 0 (what runc writes for a stopped container) and negative numbers, which
/// name no single process, both mean "no process".
fn pid_from_json<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    let pid = i32::deserialize(deserializer)?;
    Ok((pid > 0).then_some(pid))
}

impl State {
    /// The state of a container `id` being created from `bundle`, timestamped now.
    pub fn new(id: &str, bundle: &Bundle) -> State {
        State {
            // The version the bundle's spec names, as runc reports it.
            oci_version: bundle.spec.version().clone(),
            id: id.to_owned(),
            pid: None,
            status: Status::Creating,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: format_rfc3339(SystemTime::now()),
            annotations: bundle.spec.annotations().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
            owner: String::new(),
        }
    }

    /// Marks the container stopped if its sandbox process has gone, as runc
    /// does before it reports a state: a sandbox that died leaves a
    /// `state.json` that still says it runs.
    pub fn refresh(&mut self) {
        if let Some(pid) = self.pid {
            if !process_alive(pid) {
                self.pid = None;
                self.status = Status::Stopped;
            }
        }
    }
}

/// Why container state could not be created, read, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The ID breaks the rules for container IDs.
    #[error("invalid container ID {id:?}: {reason}; use 1 to 1024 characters from A-Z a-z 0-9 _ + . -")]
    InvalidId { id: String, reason: String },

    /// `create` found the container's directory already there.
    #[error("container ID {id} already exists under {}; choose another ID or remove the old container with `moat delete {id}`", .root.display())]
    Exists { id: String, root: PathBuf },

    /// `open` found no directory for the container.
    #[error("container ID {id} does not exist under {}; see `moat list` for the containers there, or pass the right --root", .root.display())]
    NotExist { id: String, root: PathBuf },

    /// The runtime root could not be created or read.
    #[error("cannot use runtime root {}: {source}; pass a --root directory moat can create and write", .root.display())]
    Root { root: PathBuf, source: io::Error },

    /// The container's directory could not be created.
    #[error("cannot create container state directory {}: {source}; check that the runtime root is writable", .dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },

    /// `state.json` could not be written.
    #[error("cannot save container state to {}: {source}; check that the runtime root is writable and not full", .path.display())]
    Write { path: PathBuf, source: io::Error },

    /// `state.json` could not be read.
    #[error("cannot read container state {}: {source}; if the container is half-created, `moat delete --force` removes it", .path.display())]
    Read { path: PathBuf, source: io::Error },

    /// `state.json` is not an OCI state document.
    #[error("container state {} is corrupt: {source}; `moat delete --force` removes the container", .path.display())]
    Corrupt { path: PathBuf, source: serde_json::Error },

    /// The container's directory could not be removed.
    #[error("cannot remove container state directory {}: {source}; remove it by hand once nothing uses it", .dir.display())]
    Remove { dir: PathBuf, source: io::Error },
}

/// Checks a container ID: 1 to 1024 characters of `[A-Za-z0-9_+.-]`, and not
/// `.` or `..`, so that it is always a single, plain file name under the root.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let invalid = |reason: String| {
        // An over-long ID is cut in the message to keep it one readable line.
        let shown: String = id.chars().take(64).collect();
        Err(StateError::InvalidId { id: shown, reason })
    };
    if id.is_empty() {
        return invalid("it is empty".to_owned());
    }
    if id.len() > MAX_ID_LEN {
        return invalid(format!("it is {} characters long, more than {MAX_ID_LEN}", id.len()));
    }
    if id == "." || id == ".." {
        return invalid("it is a path component".to_owned());
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '.' | '-'))) {
        return invalid(format!("it contains {c:?}"));
    }
    Ok(())
}

/// One container's directory under the runtime root.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    id: String,
    dir: PathBuf,
}

/// Makes the temporary names of concurrent saves in one process distinct.
static SAVE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl StateDir {
    /// Creates the directory of a new container `id` under `root`, creating
    /// `root` (mode 0711) if it is missing. Fails if the ID is taken.
    pub fn create(root: &Path, id: &str) -> Result<StateDir, StateError> {
        validate_id(id)?;
        create_root(root)?;
        let dir = root.join(id);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(StateDir { root: root.to_owned(), id: id.to_owned(), dir }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists { id: id.to_owned(), root: root.to_owned() })
            }
            // IDs up to 1024 characters are valid, as in runc, but the file
            // system may allow shorter names (255 bytes on most).
            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => Err(StateError::InvalidId {
                id: id.chars().take(64).collect(),
                reason: format!("at {} characters it is too long for a file name under {}", id.len(), root.display()),
            }),
            Err(source) => Err(StateError::CreateDir { dir, source }),
        }
    }

    /// Opens the directory of an existing container `id` under `root`.
    pub fn open(root: &Path, id: &str) -> Result<StateDir, StateError> {
        validate_id(id)?;
        let dir = root.join(id);
        // symlink_metadata: a symlink planted under the root is not a container.
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(StateDir { root: root.to_owned(), id: id.to_owned(), dir }),
            _ => Err(StateError::NotExist { id: id.to_owned(), root: root.to_owned() }),
        }
    }

    /// The container ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runtime root this directory is in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The container's directory, `root/id`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where the sandbox process listens for control requests.
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join(CONTROL_SOCKET)
    }

    /// Writes `state` to `state.json` atomically: readers see the old state
    /// or the new one, never part of either.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.dir.join(STATE_FILE);
        let n = SAVE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!(".{STATE_FILE}.{}.{n}.tmp", std::process::id()));
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
            // Serializing a State cannot fail: every key is a string.
            let json = serde_json::to_vec(state).map_err(io::Error::other)?;
            file.write_all(&json)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        };
        write().map_err(|source| {
            // Best effort: the temp file is ours and worthless now; the
            // error reported is the one that stopped the save.
            let _ = fs::remove_file(&temp);
            StateError::Write { path, source }
        })
    }

    /// Reads `state.json`.
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.dir.join(STATE_FILE);
        let bytes = fs::read(&path).map_err(|source| StateError::Read { path: path.clone(), source })?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Removes the container's directory and everything in it.
    pub fn remove(self) -> Result<(), StateError> {
        fs::remove_dir_all(&self.dir).map_err(|source| StateError::Remove { dir: self.dir, source })
    }

    /// The saved states of all containers under `root`, sorted by ID.
    /// Directories without a readable `state.json` (a create in progress, a
    /// crash) are skipped; a missing root means no containers.
    pub fn list(root: &Path) -> Result<Vec<State>, StateError> {
        Ok(list_with_owners(root)?.into_iter().map(|(state, _)| state).collect())
    }
}

fn create_root(root: &Path) -> Result<(), StateError> {
    let error = |source| StateError::Root { root: root.to_owned(), source };
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(error)?;
    }
    match DirBuilder::new().mode(0o711).create(root) {
        // Set again: the umask may have taken bits from the mode asked for.
        Ok(()) => fs::set_permissions(root, fs::Permissions::from_mode(0o711)).map_err(error),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(error(source)),
    }
}

/// Saved states under `root`, each with the uid owning its directory.
fn list_with_owners(root: &Path) -> Result<Vec<(State, u32)>, StateError> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StateError::Root { root: root.to_owned(), source }),
    };
    let mut states = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StateError::Root { root: root.to_owned(), source })?;
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let Ok(dir) = StateDir::open(root, &id) else { continue };
        let Ok(meta) = fs::symlink_metadata(dir.path()) else { continue };
        if let Ok(state) = dir.load() {
            states.push((state, meta.uid()));
        }
    }
    states.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Ok(states)
}

/// The entries `moat list --format json` prints, shaped as runc's: each
/// state refreshed (a dead sandbox shows as stopped with pid 0) and with
/// `owner` the name of the user owning the container's directory, or
/// `#UID` if that user has no name.
pub fn list_entries(root: &Path) -> Result<Vec<State>, StateError> {
    Ok(list_with_owners(root)?
        .into_iter()
        .map(|(mut state, uid)| {
            state.refresh();
            state.owner = match User::from_uid(Uid::from_raw(uid)) {
                Ok(Some(user)) => user.name,
                _ => format!("#{uid}"),
            };
            state
        })
        .collect())
}

/// Whether host process `pid` exists and has not exited: a process we may
/// not signal (EPERM) exists; a zombie has exited.
pub fn process_alive(pid: i32) -> bool {
    // kill(0 or negative) would probe process groups, not a process.
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

/// Reads the state letter of `/proc/PID/stat`; the process name before it
/// is in parentheses and may itself contain spaces and parentheses.
fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rfind(')').and_then(|end| stat[end + 1..].trim_start().chars().next());
    state == Some('Z')
}
