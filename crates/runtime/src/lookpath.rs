//! The check runc makes at `create`: the process's program exists in the
//! container's root and is executable, found along its PATH as Go's
//! `exec.LookPath` finds it. Engines read the words of a failed `create`
//! (podman reports "executable file not found" as 127); a failed `start`
//! they report only as 126.

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use oci_spec::runtime::Spec;

/// Why the program cannot start, in runc's words, or `Ok` if it can or if
/// only the running container can tell (the program, or a PATH directory,
/// lies under a mount, which the root directory does not show).
pub(crate) fn check(rootfs: &Path, spec: &Spec) -> Result<(), String> {
    let Some(process) = spec.process().as_ref() else { return Ok(()) };
    let Some(name) = process.args().as_ref().and_then(|a| a.first()) else { return Ok(()) };
    let mounts: Vec<PathBuf> =
        spec.mounts().iter().flatten().map(|m| m.destination().clone()).filter(|d| d != Path::new("/")).collect();
    let mounted = |path: &Path| mounts.iter().any(|m| path.starts_with(m));
    let Ok(root) = std::fs::File::open(rootfs) else { return Ok(()) };
    if name.contains('/') {
        let path = process.cwd().join(name);
        if mounted(&path) {
            return Ok(());
        }
        return match executable(&root, &path) {
            Found::Executable => Ok(()),
            Found::NotExecutable => Err(format!("exec: {name:?}: permission denied")),
            Found::Missing => Err(format!("exec: {name:?}: stat {name}: no such file or directory")),
        };
    }
    let env = process.env().clone().unwrap_or_default();
    let path_var = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or_default();
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = process.cwd().join(dir).join(name);
        if mounted(&candidate) {
            return Ok(());
        }
        if executable(&root, &candidate) == Found::Executable {
            return Ok(());
        }
    }
    Err(format!("exec: {name:?}: executable file not found in $PATH"))
}

#[derive(Debug, PartialEq, Eq)]
enum Found {
    Executable,
    NotExecutable,
    Missing,
}

/// `path` resolved inside the root (its symlinks, which the app may have
/// planted in an earlier run, cannot lead out): executable as Go counts
/// it (not a directory, some x bit), there but not, or not there.
fn executable(root: &std::fs::File, path: &Path) -> Found {
    let relative: PathBuf =
        path.components().filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir)).collect();
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let Ok(fd) = nix::fcntl::openat2(root.as_raw_fd(), &relative, how) else { return Found::Missing };
    // The fd openat2 just returned is ours alone.
    let Ok(file) = host::sys::take_inherited_fd(fd).map(std::fs::File::from) else { return Found::Missing };
    match file.metadata() {
        Ok(m) if !m.is_dir() && m.permissions().mode() & 0o111 != 0 => Found::Executable,
        Ok(_) => Found::NotExecutable,
        Err(_) => Found::Missing,
    }
}
