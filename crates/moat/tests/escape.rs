//! Escape attempts from inside the sandbox, some raced by renames on the host
//! or in the sandbox: each must fail to reach the host and leave it untouched.
//! The rootfs is a busybox tree the test builds; the host files the attacks
//! aim at are a marker file outside it and the host's root.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use common::{run_moat, run_moat_script, unique_name, Output, Rootfs, TempDir};

/// A marker outside the rootfs that no sandbox must be able to read or change.
fn host_marker() -> (TempDir, String) {
    let dir = TempDir::new("escape-marker");
    let path = dir.path().join("secret");
    std::fs::write(&path, "host-secret\n").expect("write marker");
    let p = path.to_str().expect("utf-8").to_string();
    (dir, p)
}

fn assert_no_secret(out: &common::Output) {
    assert!(!out.stdout.contains("host-secret"), "a host file leaked into the sandbox:\n{}", out.describe());
    assert!(!out.stderr.contains("panicked"), "the Sentry panicked:\n{}", out.describe());
}

/// The rootfs's own top-level names, as the sandbox's `ls | sort | tr '\n' ' '`
/// prints them (LC_ALL=C: byte order).
fn rootfs_top_level(rootfs: &Rootfs) -> String {
    names_in(rootfs.path()).iter().map(|n| format!("{n} ")).collect()
}

/// The lines of `out`'s stdout between the line `==NAME` and the next `==`
/// line, each with its newline.
fn section(out: &Output, name: &str) -> String {
    let start = format!("=={name}");
    let mut lines = out.stdout.lines().skip_while(|l| *l != start);
    assert!(lines.next().is_some(), "no section {start} in the sandbox's output:\n{}", out.describe());
    lines.take_while(|l| !l.starts_with("==")).map(|l| format!("{l}\n")).collect()
}

#[test]
fn symlinks_in_the_rootfs_resolve_inside_it() {
    let (_d, marker) = host_marker();
    let r = Rootfs::new();
    symlink(&marker, r.host_path("etc/evil-abs")).expect("symlink");
    symlink("/", r.host_path("etc/evil-root")).expect("symlink");
    symlink("/etc/shadow", r.host_path("etc/evil-shadow")).expect("symlink");
    let out = run_moat_script(
        &r,
        &format!(
            "cat /etc/evil-abs 2>&1; echo ==root; ls /etc/evil-root/ | sort | tr '\\n' ' '; echo; \
             echo ==shadow; cat /etc/evil-shadow; echo ==end; echo x > /etc/evil-abs; cat {marker} 2>&1; echo done"
        ),
    );
    assert_no_secret(&out);
    assert!(out.stdout.contains("done"), "{}", out.describe());
    // "/" through the symlink is the sandbox's root: exactly the rootfs's own
    // top-level names (the host's / has others: boot, lib, var...).
    assert_eq!(section(&out, "root"), format!("{}\n", rootfs_top_level(&r)), "{}", out.describe());
    // The shadow file read is the rootfs's own, byte for byte.
    let planted = fs::read_to_string(r.host_path("etc/shadow")).expect("the rootfs's shadow file");
    assert_eq!(section(&out, "shadow"), planted, "{}", out.describe());
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "host-secret\n", "the host marker changed");
}

#[test]
fn dotdot_chains_and_proc_self_root_stay_inside() {
    let (_d, marker) = host_marker();
    let r = Rootfs::new();
    let depth = "../".repeat(40);
    let out = run_moat_script(
        &r,
        &format!(
            "cd /etc && cat {depth}{m} 2>&1; cat /proc/self/root/..{m} 2>&1; \
             echo ==root; ls /proc/self/root/../../.. | sort | tr '\\n' ' '; echo; echo ==end; \
             cd {depth} && pwd; echo done",
            m = marker
        ),
    );
    assert_no_secret(&out);
    assert!(out.stdout.contains("done"), "{}", out.describe());
    assert!(out.stdout.lines().any(|l| l == "/"), "cd ../.. did not stop at the root:\n{}", out.describe());
    // /proc/self/root/../../.. is the sandbox's root: the rootfs's own top level.
    assert_eq!(section(&out, "root"), format!("{}\n", rootfs_top_level(&r)), "{}", out.describe());
}

#[test]
fn fifos_and_device_nodes_in_the_rootfs_are_not_opened_on_the_host() {
    let r = Rootfs::new();
    let fifo = r.host_path("etc/fifo");
    let st = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    // A device node for the host's /dev/mem (1,1) and /dev/null-like (1,3).
    for (name, minor) in [("mem", "1"), ("nul", "3")] {
        let st = std::process::Command::new("mknod")
            .arg(r.host_path(&format!("etc/{name}")))
            .args(["c", "1", minor])
            .status()
            .expect("mknod");
        assert!(st.success());
    }
    let out = run_moat_script(
        &r,
        "ls -l /etc/fifo /etc/mem /etc/nul | cut -c1 | tr -d '\\n'; echo; \
         head -c 16 /etc/mem > /dev/null 2>&1; echo mem=$?; echo hi > /etc/nul 2>&1; echo nul=$?; \
         timeout 2 cat /etc/fifo; echo done",
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    // The nodes are visible as metadata...
    assert!(out.stdout.starts_with("pcc"), "{}", out.describe());
    // ...but reading the host's memory device fails.
    assert!(out.stdout.contains("mem=1"), "{}", out.describe());
    assert!(out.stdout.contains("done"), "{}", out.describe());
}

#[test]
fn file_handles_are_refused() {
    // busybox has no name_to_handle_at; use the host's python3 against the host root.
    let out = common::run_moat(&[
        "do",
        "--",
        "/usr/bin/python3",
        "-c",
        "import ctypes, os\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         buf = ctypes.create_string_buffer(136); mnt = ctypes.c_int()\n\
         r = libc.name_to_handle_at(-100, b'/etc/hostname', buf, ctypes.byref(mnt), 0)\n\
         print('name_to_handle_at', r, os.strerror(ctypes.get_errno()))\n\
         r = libc.open_by_handle_at(-100, buf, 0)\n\
         print('open_by_handle_at', r, os.strerror(ctypes.get_errno()))",
    ]);
    assert!(out.stdout.contains("name_to_handle_at -1 Operation not supported"), "{}", out.describe());
    assert!(out.stdout.contains("open_by_handle_at -1 Operation not permitted"), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// Rename races: a directory on the path swapped for a symlink that leads out
// ---------------------------------------------------------------------------

/// How many names under /race the host swaps, and how many rounds the
/// sandbox walks them: each round walks /race/d and one name it has not
/// walked before, so that an exclusive root's lookup cache cannot answer it.
const RACE_ROUNDS: usize = 300;

/// `moat do --rootfs ROOT --file-access ACCESS -- /bin/sh -c SCRIPT`.
fn run_moat_script_with_access(rootfs: &Rootfs, access: &str, script: &str) -> Output {
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    run_moat(&["do", "--rootfs", root, "--file-access", access, "--", "/bin/sh", "-c", script])
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut names: Vec<String> =
        entries.map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Every path under `top` (not following symlinks) whose last component is `name`.
fn find_named(top: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![top.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == name {
                found.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            }
        }
    }
    found
}

/// Checks the host after a race: the marker is unchanged and alone in its
/// directory, and no file named `written` (what the sandbox tried to write
/// through the raced names) is on the host outside the rootfs, in the places
/// a symlink to `/`, `..` chains or the marker's directory would lead.
fn assert_host_untouched(marker: &str, rootfs: &Rootfs, written: &str, out: &Output) {
    let marker_dir = Path::new(marker).parent().expect("the marker has a directory");
    assert_eq!(fs::read_to_string(marker).expect("marker"), "host-secret\n", "the host marker changed");
    assert_eq!(names_in(marker_dir), ["secret"], "something was created next to the host marker\n{}", out.describe());
    let outside = [Path::new("/"), Path::new("/tmp"), rootfs.path().parent().expect("rootfs parent")];
    for dir in outside {
        assert!(
            !dir.join(written).exists(),
            "{} was written on the host, outside the rootfs\n{}",
            dir.join(written).display(),
            out.describe()
        );
    }
}

fn assert_race_ran_inside(out: &Output) {
    assert_no_secret(out);
    assert!(!out.stderr.contains("host-secret"), "a host file leaked into the sandbox:\n{}", out.describe());
    assert!(out.status == 0 && out.stdout.contains("race-done"), "the sandbox did not finish:\n{}", out.describe());
}

/// One raced name on the host: `race/NAME` is a directory holding `f`, and
/// the host thread swaps it (two renames each way) with `race/NAME.host`, a
/// symlink to the marker's directory, and `race/NAME.root`, a symlink to `/`.
struct RacedName {
    name: PathBuf,
    parked: PathBuf,
    links: [PathBuf; 2],
}

impl RacedName {
    fn create(race: &Path, name: &str, marker_dir: &Path) -> RacedName {
        let dir = race.join(name);
        fs::create_dir(&dir).expect("create a raced directory");
        fs::write(dir.join("f"), "innocent\n").expect("write the innocent file");
        let links = [race.join(format!("{name}.host")), race.join(format!("{name}.root"))];
        symlink(marker_dir, &links[0]).expect("symlink to the host");
        symlink("/", &links[1]).expect("symlink to /");
        RacedName { name: dir, parked: race.join(format!("{name}.dir")), links }
    }

    /// Puts symlink `which` where the directory was.
    fn swap_in(&self, which: usize) {
        fs::rename(&self.name, &self.parked).expect("park the raced directory");
        fs::rename(&self.links[which], &self.name).expect("move the symlink in");
    }

    /// Puts the directory back.
    fn swap_out(&self, which: usize) {
        fs::rename(&self.name, &self.links[which]).expect("move the symlink out");
        fs::rename(&self.parked, &self.name).expect("unpark the raced directory");
    }
}

/// While a host thread keeps swapping the directories under the rootfs's
/// /race for symlinks to the marker's directory (an absolute host path) and
/// to `/`, the sandbox walks them: reads, listings, a cd, and writes.
fn host_rename_race(access: &str) {
    let (_d, marker) = host_marker();
    let marker_dir = Path::new(&marker).parent().expect("marker dir").to_path_buf();
    let rootfs = Rootfs::new();
    let race = rootfs.host_path("race");
    fs::create_dir(&race).expect("create race/");
    let names: Vec<RacedName> = std::iter::once("d".to_owned())
        .chain((0..RACE_ROUNDS).map(|i| format!("n{i}")))
        .map(|name| RacedName::create(&race, &name, &marker_dir))
        .collect();
    let listing_before = names_in(&race);

    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, cycles) = (stop.clone(), cycles.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for which in 0..2 {
                    names.iter().for_each(|n| n.swap_in(which));
                    names.iter().for_each(|n| n.swap_out(which));
                }
                cycles.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // At least one whole cycle before the sandbox starts, so the swapping is
    // known to work; whether a given walk meets a symlink is up to the race.
    while cycles.load(Ordering::Relaxed) == 0 && !swapper.is_finished() {
        thread::yield_now();
    }

    let written = unique_name("race-written");
    let script = format!(
        "i=0; while [ $i -lt {RACE_ROUNDS} ]; do
           cat /race/d/f /race/d/secret /race/n$i/f /race/n$i/secret 2>&1
           ls /race/d /race/n$i 2>&1
           echo pwned > /race/n$i/{written} 2>/dev/null; echo pwned > /race/d/secret 2>/dev/null
           if cd /race/n$i 2>/dev/null; then while read -r l; do echo \"read $l\"; done < secret; cd /; fi 2>&1
           i=$((i + 1))
         done; cat {marker} 2>&1; echo race-done"
    );
    let out = run_moat_script_with_access(&rootfs, access, &script);
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("the host swapper thread failed");

    assert_race_ran_inside(&out);
    assert_host_untouched(&marker, &rootfs, &written, &out);
    assert_eq!(names_in(&race), listing_before, "the raced names were not all restored");
    if access == "exclusive" {
        let leaked = find_named(rootfs.path(), &written);
        assert!(leaked.is_empty(), "writes under an exclusive root reached the host rootfs: {leaked:?}");
    }
}

#[test]
fn host_rename_race_on_an_exclusive_root_stays_inside() {
    host_rename_race("exclusive");
}

#[test]
fn host_rename_race_on_a_shared_root_stays_inside() {
    host_rename_race("shared");
}

/// Two loops inside the sandbox race each other: one swaps /race/d (a
/// directory holding `f`) with symlinks to `/..`, a `..` chain, the marker's
/// directory (an absolute host path) and `/`; the other reads, lists, cds
/// into and writes through /race/d meanwhile.
fn sandbox_rename_race(access: &str) {
    let (_d, marker) = host_marker();
    let marker_dir = Path::new(&marker).parent().expect("marker dir").display().to_string();
    let rootfs = Rootfs::new();
    fs::create_dir_all(rootfs.host_path("race/d")).expect("create race/d");
    rootfs.write_file("race/d/f", b"innocent\n", 0o644);
    let written = unique_name("race-written");
    let script = format!(
        "swap() {{
           i=0; while [ $i -lt 40 ]; do
             mv /race/d /race/d.real; ln -s /.. /race/d; ln -sfn ../../../../.. /race/d
             ln -sfn {marker_dir} /race/d; ln -sfn / /race/d; rm /race/d; mv /race/d.real /race/d
             i=$((i + 1))
           done
         }}
         walk() {{
           i=0; while [ $i -lt 100 ]; do
             cat /race/d/f /race/d/secret /race/d/../../secret
             ls /race/d/ /race/d/..
             echo pwned > /race/d/{written}; echo pwned > /race/d/secret; echo pwned > /race/d/../{written}
             if cd /race/d; then cd ..; cd ..; cat secret f; echo pwned > {written}; cd /; fi
             i=$((i + 1))
           done
         }}
         swap > /dev/null 2>&1 & walk 2>&1 & wait
         cat {marker} 2>&1; ls -d {marker_dir} 2>&1; echo race-done"
    );
    let out = run_moat_script_with_access(&rootfs, access, &script);

    assert_race_ran_inside(&out);
    assert_host_untouched(&marker, &rootfs, &written, &out);
    if access == "exclusive" {
        assert_eq!(names_in(&rootfs.host_path("race")), ["d"], "the sandbox's renames reached the host rootfs");
        assert_eq!(names_in(&rootfs.host_path("race/d")), ["f"], "the sandbox's writes reached the host rootfs");
        let leaked = find_named(rootfs.path(), &written);
        assert!(leaked.is_empty(), "writes under an exclusive root reached the host rootfs: {leaked:?}");
    }
}

#[test]
fn sandbox_rename_race_on_an_exclusive_root_stays_inside() {
    sandbox_rename_race("exclusive");
}

#[test]
fn sandbox_rename_race_on_a_shared_root_stays_inside() {
    sandbox_rename_race("shared");
}
