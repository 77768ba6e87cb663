//! The HOME a container's process gets when its environment has none: as
//! with runc, the home of its uid's entry in the container's /etc/passwd, else "/".

use std::io::Read;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

/// At most this much of /etc/passwd is read: the file is the container
/// image's, and a real one is a few kilobytes.
const MAX_PASSWD: u64 = 4 << 20;

/// Sets HOME in `env` (`KEY=VALUE`s) unless it has a non-empty one, as
/// runc does for init and for exec'd processes: to the home directory of
/// `uid` in `rootfs`'s /etc/passwd, or "/" if it has no entry for `uid`.
pub(crate) fn set_home(env: &mut Vec<String>, rootfs: &Path, uid: u32) {
    if env.iter().any(|e| e.strip_prefix("HOME=").is_some_and(|home| !home.is_empty())) {
        return;
    }
    env.retain(|e| !e.starts_with("HOME="));
    let home = read_passwd(rootfs).and_then(|passwd| home_of(&passwd, uid)).unwrap_or_else(|| "/".to_owned());
    env.push(format!("HOME={home}"));
}

/// `rootfs`/etc/passwd, resolved inside `rootfs` (its symlinks cannot lead
/// out), if it is a regular file that can be read.
fn read_passwd(rootfs: &Path) -> Option<String> {
    let root = std::fs::File::open(rootfs).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(std::os::fd::AsRawFd::as_raw_fd(&root), "/etc/passwd", how).ok()?;
    // The fd openat2 just returned is ours alone.
    let file = std::fs::File::from(host::sys::take_inherited_fd(fd).ok()?);
    // A FIFO or device would block or never end.
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_PASSWD).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The home directory (sixth field) of the first entry whose uid (third
/// field) is `uid`.
fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().map(|line| line.trim().split(':').collect::<Vec<_>>()).find_map(|fields| {
        let matches = fields.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid);
        matches.then(|| fields.get(5).copied().unwrap_or_default().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# a comment\nshort:x:7\nu:x:1000:1000::/home/u:/bin/sh\n\
                          again:x:1000:1000::/home/again:/bin/sh\n";

    fn env_after(env: &[&str], rootfs: &Path, uid: u32) -> Vec<String> {
        let mut env: Vec<String> = env.iter().map(|e| (*e).to_owned()).collect();
        set_home(&mut env, rootfs, uid);
        env
    }

    #[test]
    fn the_first_entry_of_the_uid_gives_home() {
        assert_eq!(home_of(PASSWD, 0).as_deref(), Some("/root"));
        assert_eq!(home_of(PASSWD, 1000).as_deref(), Some("/home/u"));
        assert_eq!(home_of(PASSWD, 7).as_deref(), Some(""));
        assert_eq!(home_of(PASSWD, 4242), None);
    }

    #[test]
    fn home_is_set_only_when_missing_or_empty() {
        let dir = std::env::temp_dir().join(format!("moat-passwd-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).expect("mkdir");
        std::fs::write(dir.join("etc/passwd"), PASSWD).expect("write");
        assert_eq!(env_after(&["PATH=/bin"], &dir, 1000), ["PATH=/bin", "HOME=/home/u"]);
        assert_eq!(env_after(&["HOME=", "A=b"], &dir, 0), ["A=b", "HOME=/root"]);
        assert_eq!(env_after(&["HOME=/mine"], &dir, 0), ["HOME=/mine"]);
        assert_eq!(env_after(&[], &dir, 4242), ["HOME=/"]);
        // A symlink out of the root is resolved inside it: no passwd there.
        std::fs::remove_file(dir.join("etc/passwd")).expect("rm");
        std::os::unix::fs::symlink("/../../../../etc/passwd", dir.join("etc/passwd")).expect("symlink");
        assert_eq!(env_after(&[], &dir, 0), ["HOME=/"]);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
