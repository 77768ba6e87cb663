//! The overlay against a native directory: one busybox script edits a
//! prepared lower tree natively (chrooted into a copy of the rootfs, the
//! oracle) and under `moat do --rootfs`; stdout and exit status must match,
//! and the host's rootfs must be exactly as it was (moat's upper layer is in
//! memory).
//!
//! The tests must run as root (the native run uses namespaces, mounts and
//! chroot) with busybox-static and util-linux installed.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use common::{run_moat_script, run_native_script, Output, Rootfs};

// ---------------------------------------------------------------------------
// The lower tree and the harness
// ---------------------------------------------------------------------------

/// Regular files of the lower tree: (path, contents, mode). Under moat's /tmp
/// is a tmpfs, so the tree lives under /data (and /many) instead.
const LOWER_FILES: &[(&str, &str, u32)] = &[
    ("data/a.txt", "alpha\n", 0o644),
    ("data/b.txt", "bravo\n", 0o644),
    ("data/c.txt", "charlie\n", 0o640),
    ("data/run.sh", "#!/bin/sh\necho ran\n", 0o755),
    ("data/pair1", "paired\n", 0o644),
    ("data/sub/s1", "sub one\n", 0o644),
    ("data/sub/s2", "sub two\n", 0o600),
    ("data/sub/nested/deep", "deep\n", 0o644),
    ("data/other/o1", "other one\n", 0o644),
];

/// Directories of the lower tree, parents first: (path, mode).
const LOWER_DIRS: &[(&str, u32)] = &[
    ("data", 0o755),
    ("data/empty", 0o755),
    ("data/sub", 0o755),
    ("data/sub/nested", 0o750),
    ("data/sub/nested/deeper", 0o755),
    ("data/other", 0o755),
    ("many", 0o755),
];

/// Symlinks of the lower tree: (path, target).
const LOWER_SYMLINKS: &[(&str, &str)] = &[("data/link-a", "a.txt"), ("data/link-abs", "/data/sub/s1")];

/// How many files /many holds: more than one getdents buffer's worth of names.
const MANY_FILES: usize = 2000;

/// Lower entries owned by someone other than root: (path, uid, gid).
const LOWER_OWNERS: &[(&str, u32, u32)] =
    &[("data/c.txt", 1234, 5678), ("data/other", 4321, 8765), ("data/other/o1", 4321, 8765)];

/// The modification time of every lower file and directory, so that both
/// runs start from the same times: 2001-09-09 01:46:40 UTC.
const LOWER_MTIME: u64 = 1_000_000_000;

/// A busybox rootfs holding the lower tree: the files, dirs and symlinks
/// above, `data/pair2` a hard link of `data/pair1`, `data/big.txt` (about
/// 200 KiB, larger than one 9P read), and /many with MANY_FILES small files.
fn rootfs_with_lower_tree() -> Rootfs {
    let rootfs = Rootfs::new();
    for (dir, mode) in LOWER_DIRS {
        let path = rootfs.host_path(dir);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
    }
    for (file, contents, mode) in LOWER_FILES {
        rootfs.write_file(file, contents.as_bytes(), *mode);
    }
    for (link, target) in LOWER_SYMLINKS {
        symlink(target, rootfs.host_path(link)).unwrap_or_else(|e| panic!("cannot link {link}: {e}"));
    }
    fs::hard_link(rootfs.host_path("data/pair1"), rootfs.host_path("data/pair2")).expect("hard link data/pair2");
    let big: String = (0..20_000).map(|i| format!("line {i:05}\n")).collect();
    rootfs.write_file("data/big.txt", big.as_bytes(), 0o644);
    for i in 0..MANY_FILES {
        rootfs.write_file(&format!("many/f{i:04}"), format!("{i}\n").as_bytes(), 0o644);
    }
    for (path, uid, gid) in LOWER_OWNERS {
        chown(rootfs.host_path(path), Some(*uid), Some(*gid)).unwrap_or_else(|e| panic!("cannot chown {path}: {e}"));
    }
    // Last, so that no later change to a directory's entries moves its time.
    let mtime = UNIX_EPOCH + Duration::from_secs(LOWER_MTIME);
    let files = LOWER_FILES.iter().map(|(path, _, _)| *path).chain(["data/pair2", "data/big.txt"]);
    for path in files.chain(LOWER_DIRS.iter().map(|(path, _)| *path)) {
        let host = rootfs.host_path(path);
        fs::File::open(&host)
            .and_then(|f| f.set_modified(mtime))
            .unwrap_or_else(|e| panic!("cannot set the mtime of {}: {e}", host.display()));
    }
    rootfs
}

/// Shell functions every script may use. `show DIR...` lists the trees in
/// sorted order with only what native Linux and an overlay agree on: names,
/// types, permissions, owners, the sizes of non-directories (a directory's
/// size is the file system's own business), symlink targets, each
/// directory's entries as readdir gives them, and each file's contents (a
/// checksum for large ones). Inode numbers, times and link counts are left
/// out: the tests that care print them where they are comparable.
const PRELUDE: &str = r#"
show() {
    find "$@" | sort | while IFS= read -r p; do
        if [ -L "$p" ]; then
            stat -c '%n %F %s' "$p"; echo "  -> $(readlink "$p")"
        elif [ -d "$p" ]; then
            stat -c '%n %F %a %u:%g' "$p"; echo "  [$(ls -A "$p" | tr '\n' ' ')]"
        else
            stat -c '%n %s %F %a %u:%g' "$p"
            if [ "$(stat -c %s "$p")" -gt 4096 ]; then md5sum < "$p"; else sed 's/^/  | /' "$p"; echo; fi
        fi
    done
}
"#;

/// The last line of every script, so that a script that stopped early is seen.
const END: &str = "end-of-script";

/// Runs `script` (after PRELUDE) natively in one fresh rootfs with the lower
/// tree and under moat in another; requires the native run to succeed with
/// nothing on stderr (failures the script expects go to stdout with 2>&1),
/// then moat to print the same stdout with the same status, and the moat
/// rootfs on the host to be untouched.
fn overlay_differential(script: &str) {
    let full = format!("{PRELUDE}\n{script}\necho {END}");

    let native_rootfs = rootfs_with_lower_tree();
    let native = run_native_script(&native_rootfs, &full);
    assert!(
        native.status == 0 && native.stderr.is_empty() && native.stdout.ends_with(&format!("\n{END}\n")),
        "the NATIVE run (the oracle) failed or wrote to stderr, so the test or its chroot setup is broken, \
         not moat\nscript: {script}\n\nnative run:\n{}",
        native.describe()
    );

    let rootfs = rootfs_with_lower_tree();
    let before = snapshot(rootfs.path());
    let moat = run_moat_script(&rootfs, &full);
    let after = snapshot(rootfs.path());

    assert!(!moat.stderr.contains("panicked"), "moat panicked\nscript: {script}\n\n{}", moat.describe());
    assert!(
        moat.stdout == native.stdout && moat.status == native.status,
        "moat differs from native Linux\nscript: {script}\n\n{}\n=== native ===\n{}\n\n=== moat ===\n{}",
        first_difference(&native, &moat),
        native.describe(),
        moat.describe()
    );
    assert_untouched(&before, &after);
}

/// The first line where the two stdouts part, to point at in a failure.
fn first_difference(native: &Output, moat: &Output) -> String {
    let (mut native_lines, mut moat_lines) = (native.stdout.lines(), moat.stdout.lines());
    for number in 1.. {
        match (native_lines.next(), moat_lines.next()) {
            (None, None) => {
                return format!("stdouts are equal; exit status native {} moat {}", native.status, moat.status)
            }
            (n, m) if n == m => {}
            (n, m) => return format!("first difference at stdout line {number}:\n  native: {n:?}\n  moat:   {m:?}"),
        }
    }
    unreachable!("the loop returns")
}

/// What a tree holds, for checking that nothing changed it: per path (relative
/// to the top) the file type, permissions, owner, size, inode, link count,
/// mtime and ctime, and the bytes of each file or the target of each symlink.
/// Access times are left out: reading a file may set them.
fn snapshot(top: &Path) -> BTreeMap<PathBuf, String> {
    let mut tree = BTreeMap::new();
    let mut pending = vec![top.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
        let kind = meta.file_type();
        let contents = if kind.is_symlink() {
            format!("-> {}", fs::read_link(&path).expect("readlink").display())
        } else if kind.is_file() {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            format!("{} bytes, {:016x}", bytes.len(), fnv1a(&bytes))
        } else {
            String::new()
        };
        if kind.is_dir() {
            let entries = fs::read_dir(&path).unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()));
            pending.extend(entries.map(|e| e.expect("directory entry").path()));
        }
        let line = format!(
            "mode {:o} uid {} gid {} size {} ino {} nlink {} mtime {}.{:09} ctime {}.{:09} {contents}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.size(),
            meta.ino(),
            meta.nlink(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        );
        tree.insert(path.strip_prefix(top).expect("below the top").to_path_buf(), line);
    }
    tree
}

/// A 64-bit FNV-1a hash: enough to see that a file's bytes changed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn assert_untouched(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) {
    let mut changes = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => changes.push(format!("removed: /{}", path.display())),
            Some(now) if now != was => changes.push(format!("changed: /{}\n  was {was}\n  now {now}", path.display())),
            Some(_) => {}
        }
    }
    changes.extend(after.keys().filter(|p| !before.contains_key(*p)).map(|p| format!("added: /{}", p.display())));
    assert!(
        changes.is_empty(),
        "the run under moat changed the host's rootfs (writes must stay in the in-memory overlay):\n{}",
        changes.join("\n")
    );
}

// ---------------------------------------------------------------------------
// One theme per test
// ---------------------------------------------------------------------------

#[test]
fn creating_appending_and_overwriting() {
    overlay_differential(
        "echo new > /data/new.txt
         echo deep-new > /data/sub/nested/deeper/new
         echo more >> /data/a.txt
         echo replaced > /data/b.txt
         printf XY | dd of=/data/c.txt bs=1 seek=2 conv=notrunc 2>/dev/null
         printf MIDDLE | dd of=/data/big.txt bs=1 seek=100000 conv=notrunc 2>/dev/null
         echo line2 >> /data/sub/nested/deep
         printf tail >> /data/big.txt
         tail -c 20 /data/big.txt; echo
         echo appended >> /data/link-a
         echo owned >> /data/other/o1
         (set -C; echo clobbered > /data/run.sh) 2>&1
         cat /data/a.txt /data/b.txt /data/c.txt /data/link-a /data/new.txt /data/run.sh
         show /data",
    );
}

#[test]
fn renaming_lower_files() {
    overlay_differential(
        "mv /data/a.txt /data/a-renamed.txt
         mv /data/sub/s1 /data/other/s1-moved
         mv /data/b.txt /data/c.txt
         mv /data/sub/nested/deep /data/deep-up
         mv /data/link-a /data/sub/link-a
         mv /data/other/o1 /data/other/o1.tmp && mv /data/other/o1.tmp /data/other/o1
         mv /data/run.sh /data/empty/run.sh && /data/empty/run.sh
         mv /data/big.txt /data/sub/nested/deeper/big.txt
         mv /data/c.txt /data/c.txt
         exec 3>> /data/pair1; mv /data/pair1 /data/sub/p1; echo via-fd >&3; exec 3>&-; cat /data/sub/p1
         cat /data/a.txt 2>&1; cat /data/b.txt 2>&1; cat /data/sub/link-a 2>&1
         cat /data/a-renamed.txt /data/c.txt /data/other/s1-moved
         ls /data /data/sub /data/other
         show /data",
    );
}

#[test]
fn deleting_and_recreating_lower_files() {
    overlay_differential(
        "rm /data/a.txt; cat /data/a.txt 2>&1; ls /data
         echo second > /data/a.txt; cat /data/a.txt
         rm /data/link-a; ln -s c.txt /data/link-a; cat /data/link-a
         rm /data/other/o1; echo o1-again > /data/other/o1; cat /data/other/o1
         rm /data/sub/s1; mkdir /data/sub/s1; ls -A /data/sub/s1; echo in-dir > /data/sub/s1/x
         exec 4< /data/b.txt; rm /data/b.txt; cat <&4; exec 4<&-
         ln /data/c.txt /data/b.txt; stat -c '%n %h' /data/b.txt
         rm /data/sub 2>&1; rmdir /data/sub 2>&1; rmdir /data/empty; ls -d /data/empty 2>&1
         rm /data/sub/nested/deep; rmdir /data/sub/nested/deeper; rmdir /data/sub/nested; ls -A /data/sub
         ls /data /data/sub /data/other
         show /data",
    );
}

#[test]
fn a_deleted_lower_name_stays_deleted_after_it_is_recreated_and_deleted_again() {
    // Every line ends with the name gone: whatever the lower layer had there
    // must not show through again.
    overlay_differential(
        "rm /data/a.txt; echo second > /data/a.txt; rm /data/a.txt; cat /data/a.txt 2>&1
         rm /data/b.txt; echo second > /data/b.txt; mv /data/b.txt /data/b-moved; cat /data/b.txt 2>&1
         rm /data/c.txt; ln /data/pair1 /data/c.txt; rm /data/c.txt; cat /data/c.txt 2>&1
         rm /data/sub/s1; mkdir /data/sub/s1; rmdir /data/sub/s1; cat /data/sub/s1 2>&1
         rm -r /data/other; echo now-a-file > /data/other; rm /data/other; ls /data/other 2>&1
         rm -r /data/empty; ln -s sub /data/empty; rm /data/empty; ls -d /data/empty 2>&1
         mv /data/run.sh /data/run-moved; echo other > /data/run.sh; rm /data/run.sh; cat /data/run.sh 2>&1
         rm /data/link-a; echo file-now > /data/link-a; rm /data/link-a; readlink /data/link-a; ls /data/link-a 2>&1
         ls /data
         show /data",
    );
}

#[test]
fn deleted_lower_directory_comes_back_empty() {
    overlay_differential(
        "rm -r /data/sub; ls /data/sub 2>&1; cat /data/sub/s1 2>&1
         mkdir /data/sub; ls -a /data/sub; stat -c '%n %F %a' /data/sub
         cat /data/sub/s1 2>&1; cat /data/sub/nested/deep 2>&1
         mkdir /data/sub/nested; ls -a /data/sub/nested
         echo fresh > /data/sub/s1; show /data/sub
         rm -r /data/other; echo now-a-file > /data/other; cat /data/other
         rm -r /data/empty; mkdir -p /data/empty/x/y; show /data/empty
         rmdir /data/sub/nested; rm /data/sub/s1; rmdir /data/sub; ls /data/sub 2>&1
         mkdir /data/sub; ls -A /data/sub
         ls -a /data
         show /data",
    );
}

#[test]
fn renaming_lower_directories() {
    // Natively rename(2) moves the directory; an overlay may refuse with
    // EXDEV, and busybox mv then copies and deletes: either way the
    // resulting tree must be the same.
    overlay_differential(
        "mv /data/sub /data/moved; ls /data/sub 2>&1; show /data/moved
         mv /data/other /data/moved/
         mv /data/empty /data/moved/nested/empty-too
         mkdir /data/fresh; echo f > /data/fresh/f; mv /data/fresh /data/moved/nested/deeper/
         mkdir /data/target; mv -T /data/moved/nested/deeper /data/target
         cat /data/moved/other/o1 /data/target/fresh/f /data/moved/nested/deep
         show /data",
    );
}

#[test]
fn renaming_lower_directories_fails_like_native() {
    // Into the directory's own subtree is EINVAL, over a non-empty directory
    // ENOTEMPTY, a file over a directory EISDIR and a directory over a file
    // ENOTDIR; the tree must be left as it was.
    overlay_differential(
        "mv /data/sub /data/sub/nested/inside 2>&1; echo status=$?
         mv -T /data/sub /data/other 2>&1; echo status=$?
         mv -T /data/empty /data/sub 2>&1; echo status=$?
         mkdir /data/new; mv -T /data/new /data/sub 2>&1; echo status=$?
         rm /data/other/o1; mv -T /data/new /data/other; echo status=$?
         mv -T /data/a.txt /data/empty 2>&1; echo status=$?
         mv -T /data/empty /data/a.txt 2>&1; echo status=$?
         show /data",
    );
}

#[test]
fn hard_links_to_lower_files() {
    overlay_differential(
        "ln /data/a.txt /data/sub/a-link
         stat -c '%n %h %s' /data/a.txt /data/sub/a-link
         [ /data/a.txt -ef /data/sub/a-link ] && echo same-file
         echo via-link >> /data/sub/a-link; cat /data/a.txt
         echo via-name >> /data/a.txt; cat /data/sub/a-link
         rm /data/a.txt; cat /data/sub/a-link; stat -c '%n %h' /data/sub/a-link
         ln /data/sub/s2 /data/s2-link; mv /data/sub/s2 /data/other/
         stat -c '%n %h %a' /data/s2-link /data/other/s2
         echo x >> /data/other/s2; cat /data/s2-link
         ln /data/b.txt /data/b2; mv /data/b.txt /data/b2; stat -c '%n %h' /data/b.txt /data/b2
         ln /data/link-a /data/hard-to-symlink; readlink /data/hard-to-symlink
         ln /data/sub /data/dir-link 2>&1; ln /data/c.txt /data/b2 2>&1
         show /data",
    );
}

#[test]
fn lower_hard_links_stay_one_file() {
    // data/pair1 and data/pair2 are one file in the lower tree.
    overlay_differential(
        "stat -c '%n %h %s' /data/pair1 /data/pair2
         [ /data/pair1 -ef /data/pair2 ] && echo same-file
         echo written >> /data/pair1; cat /data/pair2
         stat -c '%n %h %s' /data/pair1 /data/pair2
         [ /data/pair1 -ef /data/pair2 ] && echo still-same-file
         rm /data/pair1; cat /data/pair2; stat -c '%n %h %s' /data/pair2",
    );
}

#[test]
fn chmod_and_truncate() {
    overlay_differential(
        "chmod 600 /data/a.txt; chmod 4755 /data/run.sh; chmod 700 /data/sub; chmod 711 /data/sub/nested
         stat -c '%n %a' /data/a.txt /data/run.sh /data/sub /data/sub/nested
         cat /data/a.txt; /data/run.sh
         truncate -s 3 /data/b.txt; truncate -s 0 /data/c.txt; truncate -s 12 /data/sub/s1
         od -c /data/b.txt /data/sub/s1; stat -c '%n %s' /data/c.txt
         truncate -s 1000 /data/big.txt; tail -c 10 /data/big.txt; echo
         : > /data/other/o1; stat -c '%n %s' /data/other/o1
         echo x >> /data/c.txt; chmod 444 /data/c.txt; cat /data/c.txt; stat -c '%n %s %a' /data/c.txt
         chmod 640 /data/link-a; stat -c '%n %a' /data/a.txt
         show /data",
    );
}

#[test]
fn copy_up_keeps_owners_and_times() {
    // Copying a file up (here for chmod, chown, touch and an append) must keep
    // its owner and times, and those of the directories above it that the
    // operation itself does not change.
    overlay_differential(
        "list='/data /data/other /data/other/o1 /data/c.txt /data/sub /data/sub/nested /data/sub/nested/deep'
         stat -c '%n %a %u:%g %Y' $list
         chmod 600 /data/sub/nested/deep
         chown 1:2 /data/c.txt
         touch -d '2001-02-03 04:05:06' /data/b.txt
         echo more >> /data/other/o1; mkdir /data/other/d; rmdir /data/other/d
         stat -c '%n %a %u:%g %Y' /data /data/sub /data/sub/nested /data/sub/nested/deep /data/c.txt /data/b.txt
         stat -c '%n %a %u:%g' /data/other /data/other/o1
         show /data",
    );
}

#[test]
fn creating_symlinks_over_the_lower_tree() {
    overlay_differential(
        "ln -s /data/sub/nested/deep /data/abs-link; ln -s ../a.txt /data/sub/rel-link; ln -s nowhere /data/dangling
         cat /data/abs-link /data/sub/rel-link; cat /data/dangling 2>&1; readlink /data/dangling
         ln -s /data/sub /data/dir-link; ls /data/dir-link/; echo through > /data/dir-link/via-dir-link
         cat /data/sub/via-dir-link /data/link-abs
         ln -s b.txt /data/link-a 2>&1; ln -sf b.txt /data/link-a; cat /data/link-a
         mv /data/link-abs /data/other/; cat /data/other/link-abs
         ln -s loop1 /data/loop2; ln -s loop2 /data/loop1; cat /data/loop1 2>&1
         cat /data/a.txt/ 2>&1; ls /data/a.txt/ 2>&1; cat /data/dir-link/s1; ls -d /data/dir-link/
         show /data",
    );
}

#[test]
fn writing_through_a_dangling_symlink_creates_its_target() {
    // open(O_CREAT) follows a dangling symlink and creates the file it names,
    // for a symlink made in the sandbox and for one from the lower tree.
    overlay_differential(
        "ln -s nowhere /data/dangling; echo into-dangling > /data/dangling; cat /data/nowhere
         rm /data/a.txt; echo into-lower-link > /data/link-a; cat /data/a.txt
         show /data",
    );
}

#[test]
fn readdir_merges_the_layers() {
    overlay_differential(
        "ls -a /data/sub
         echo u > /data/sub/upper-only; rm /data/sub/s1; mkdir /data/sub/newdir
         mv /data/sub/s2 /data/sub/s2-renamed; ln -s s2-renamed /data/sub/s2
         ls -a /data/sub; ls -A1p /data/sub
         for n in /data/sub/* /data/sub/.*; do echo \"glob $n\"; done
         echo /data/sub/*
         find /data | sort
         echo --; find /data -type f | sort; echo --; find /data -type d | sort; echo --; find /data -type l | sort
         ls /many | wc -l
         i=0; while [ $i -lt 2000 ]; do rm /many/f$(printf %04d $i); i=$((i + 37)); done
         i=0; while [ $i -lt 50 ]; do echo $i > /many/new$i; i=$((i + 1)); done
         rm /many/f0001; mkdir /many/f0001; rm /many/new7
         ls /many | wc -l; ls -A /many | md5sum; ls -p /many | grep /
         cat /many/f0002 /many/new8
         show /data/sub",
    );
}

#[test]
fn lower_hard_link_count_drops_when_a_name_is_removed() {
    overlay_differential("rm /data/pair1; stat -c '%n %h %s' /data/pair2; cat /data/pair2");
}

#[test]
fn removing_and_renaming_a_large_lower_directory() {
    // More names than one getdents call returns: rm -r deletes while it reads.
    overlay_differential(
        "mv /many /many2; ls /many 2>&1; ls /many2 | wc -l; ls -A /many2 | md5sum
         mv /many2 /many; rm /many/f1234; ls /many | wc -l; cat /many/f1999
         rm -r /many; ls /many 2>&1
         mkdir /many; ls -A /many | wc -l",
    );
}

#[test]
fn working_directory_follows_its_renamed_directory() {
    // getcwd and `..` from a directory that was renamed to another parent
    // while it was the working directory: one from the lower tree, one made
    // in the sandbox.
    overlay_differential(
        "cd /data/sub; mv /data/sub /data/other/sub2; busybox pwd; ls; cat s1; echo new > here
         ls /data/other/sub2; cd -P ..; busybox pwd; ls
         mkdir /data/up; cd /data/up; mv /data/up /data/other/up; busybox pwd; cd -P ..; busybox pwd",
    );
}

#[test]
fn open_file_sees_writes_made_after_it_was_opened() {
    // The first write to a lower file copies it up; a descriptor opened
    // before that is still the same file natively (and in Linux's overlayfs),
    // also once the file is removed.
    overlay_differential(
        "exec 3< /data/a.txt
         echo appended >> /data/a.txt
         cat <&3
         exec 3<&-
         exec 4< /data/c.txt
         echo more >> /data/c.txt; rm /data/c.txt
         cat <&4
         exec 4<&-",
    );
}
