//! `moat do`'s command line against runsc's `do` and native Linux: the
//! working directory it starts in, the $PATH search of CMD, and bad options.
//!
//! Run as root, on the host's root file system (or a busybox rootfs).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{moat_command, unique_name, Output, Rootfs, Running, TempDir};

/// A directory under /var/tmp, which (unlike /tmp, the sandbox's own
/// tmpfs) a sandbox rooted at the host's `/` sees; removed when dropped.
struct VisibleDir(PathBuf);

impl VisibleDir {
    fn new(label: &str) -> VisibleDir {
        let path = Path::new("/var/tmp").join(unique_name(label));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        VisibleDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, contents: &str, mode: u32) {
        let path = self.0.join(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

impl Drop for VisibleDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `moat do ARGS...` started in `cwd`.
fn moat_do_in(cwd: &Path, args: &[&str]) -> (String, Output) {
    let mut full = vec!["do"];
    full.extend_from_slice(args);
    let what = format!("(cd {} && moat {})", cwd.display(), full.join(" "));
    let mut command = moat_command(&full);
    command.current_dir(cwd);
    let out = Running::spawn(command, &what, false).finish();
    (what, out)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// As with runsc's `do`, the command starts in the caller's directory when
/// the sandbox has it, and relative paths reach the files there.
#[test]
fn the_command_starts_in_the_callers_directory() {
    let dir = VisibleDir::new("do-cwd");
    dir.write("marker", "marked\n", 0o644);
    let (what, out) = moat_do_in(dir.path(), &["--", "sh", "-c", "pwd; cat marker"]);
    assert_eq!(out.status, 0, "{what}\n{}", out.describe());
    assert_eq!(out.stdout, format!("{}\nmarked\n", dir.path().display()), "{what}\n{}", out.describe());

    // Under /tmp the sandbox has a tmpfs of its own, which hides the
    // caller's directory: the command starts in / rather than failing.
    let hidden = TempDir::new("do-cwd-hidden");
    let (what, out) = moat_do_in(hidden.path(), &["--", "pwd"]);
    assert_eq!((out.status, out.stdout.as_str()), (0, "/\n"), "{what}\n{}", out.describe());
}

/// Under `--rootfs DIR` the caller's directory is used only if DIR has a
/// directory at the same path; else the command starts in /.
#[test]
fn under_a_rootfs_the_callers_directory_is_used_only_if_it_is_there() {
    let rootfs = Rootfs::new();
    let root = path_str(rootfs.path()).to_owned();
    // The rootfs has /etc, as the host does.
    let (what, out) = moat_do_in(Path::new("/etc"), &["--rootfs", &root, "--", "sh", "-c", "pwd; cat issue"]);
    assert_eq!(out.status, 0, "{what}\n{}", out.describe());
    assert_eq!(out.stdout, "/etc\nmoat first light\n", "{what}\n{}", out.describe());

    // Not in the rootfs at all.
    let elsewhere = VisibleDir::new("do-cwd-rootfs");
    let (what, out) = moat_do_in(elsewhere.path(), &["--rootfs", &root, "--", "pwd"]);
    assert_eq!((out.status, out.stdout.as_str()), (0, "/\n"), "{what}\n{}", out.describe());

    // A file, not a directory, at that path in the rootfs.
    let relative = path_str(elsewhere.path()).trim_start_matches('/');
    let parent = rootfs.host_path(relative).parent().expect("a parent").to_owned();
    fs::create_dir_all(&parent).expect("mkdir in the rootfs");
    rootfs.write_file(relative, b"a file\n", 0o644);
    let (what, out) = moat_do_in(elsewhere.path(), &["--rootfs", &root, "--", "pwd"]);
    assert_eq!((out.status, out.stdout.as_str()), (0, "/\n"), "{what}\n{}", out.describe());
}

/// `env CMD` natively (coreutils' env runs CMD with glibc's execvp): its
/// exit status with this PATH, 126 or 127 when CMD could not be run.
fn native_execvp_status(path: &str, cmd: &str) -> i32 {
    let out = Command::new("/usr/bin/env")
        .arg(cmd)
        .arg("hi")
        .env_clear()
        .env("PATH", path)
        .output()
        .expect("cannot run /usr/bin/env");
    out.status.code().expect("env exited")
}

/// The $PATH search goes on past entries where CMD cannot be found or run,
/// as glibc's execvp does; a candidate that was there but not executable
/// makes the final error EACCES (126), else it is the last entry's.
#[test]
fn path_search_goes_past_entries_it_cannot_use_as_execvp_does() {
    let dir = VisibleDir::new("do-path");
    dir.write("echo", "#!/bin/sh\necho not executable, never run\n", 0o644);
    let unexecutable = path_str(dir.path());
    let cases: Vec<(String, i32, &str)> = vec![
        // A file (ENOTDIR), a missing directory, a non-executable echo, then the real one.
        (format!("/etc/passwd:/nonexistent:{unexecutable}:/usr/bin:/bin"), 0, "hi\n"),
        // Only a non-executable candidate, then entries that fail otherwise.
        (format!("/etc/passwd:{unexecutable}:/nonexistent"), 126, ""),
        // No candidate at all: a file (ENOTDIR) then a missing directory.
        ("/etc/passwd:/nonexistent".to_owned(), 127, ""),
    ];
    for (path, status, stdout) in cases {
        let env = format!("PATH={path}");
        let (what, out) = moat_do_in(Path::new("/"), &["-e", &env, "--", "echo", "hi"]);
        assert_eq!((out.status, out.stdout.as_str()), (status, stdout), "{what}\n{}", out.describe());
        assert_eq!(out.status, native_execvp_status(&path, "echo"), "{what}: not what env does natively");
        match status {
            126 => assert!(out.stderr.contains("(EACCES)"), "{what}\n{}", out.describe()),
            127 => assert!(out.stderr.contains("(ENOENT)"), "{what}\n{}", out.describe()),
            _ => {}
        }
    }
}

/// A bad option or value is moat's own failure: status 125 and one line on
/// stderr, the command never run; `--help` still prints and exits 0.
#[test]
fn bad_options_exit_125_with_one_line() {
    let cases: &[&[&str]] = &[
        &["--bogus", "--", "echo", "ran"],
        &["--file-access", "sideways", "--", "echo", "ran"],
        &["--overlay-size", "lots", "--", "echo", "ran"],
        &["--volume", "no-colon", "--", "echo", "ran"],
        &["--tmpfs", "relative", "--", "echo", "ran"],
        &["--platform", "kvm-nope", "--", "echo", "ran"],
        &["--volume"],
        &["echo", "ran"],
        &[],
    ];
    for args in cases {
        let (what, out) = moat_do_in(Path::new("/"), args);
        assert_eq!(out.status, 125, "{what}\n{}", out.describe());
        assert!(out.stdout.is_empty(), "{what}\n{}", out.describe());
        assert_eq!(out.stderr.lines().count(), 1, "{what}: not one line\n{}", out.describe());
        assert!(out.stderr.starts_with("moat: "), "{what}\n{}", out.describe());
    }

    let (what, out) = moat_do_in(Path::new("/"), &["--help"]);
    assert_eq!(out.status, 0, "{what}\n{}", out.describe());
    assert!(out.stdout.contains("Usage: moat do"), "{what}\n{}", out.describe());

    // The OCI commands keep clap's status (2) for a usage error.
    let out = Running::spawn(moat_command(&["state"]), "moat state", false).finish();
    assert_eq!(out.status, 2, "moat state\n{}", out.describe());
}
