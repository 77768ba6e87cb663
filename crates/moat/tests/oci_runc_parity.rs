//! Where engines read runc's words or rely on its effects, moat must match:
//! `kill` of a stopped container, a process whose program is missing, and
//! the HOME a process gets. runc runs the same bundle in the same test.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::oci::Runtime;
use common::{unique_name, Rootfs, TempDir};
use serde_json::Value;

/// A container that is deleted (with --force) when the test ends, however it ends.
struct Container<'a> {
    rt: &'a Runtime,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(&["delete", "--force", &self.id]);
    }
}

/// A bundle at `dir` over `rootfs` whose process runs `args` as `uid`
/// without a terminal, its env runc's default (PATH and TERM, no HOME).
fn bundle(rt: &Runtime, dir: &TempDir, rootfs: &Rootfs, args: &[&str], uid: u32) -> String {
    let path = dir.path().to_str().expect("utf-8").to_owned();
    let out = rt.run(&["spec", "--bundle", &path]);
    assert_eq!(out.status, 0, "{} spec: {}", rt.name, out.describe());
    let config = dir.path().join("config.json");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
    spec["root"]["path"] = rootfs.path().to_str().expect("utf-8").into();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = args.iter().map(|a| Value::String((*a).to_owned())).collect();
    spec["process"]["user"] = serde_json::json!({"uid": uid, "gid": uid});
    spec["process"]["env"] = serde_json::json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]);
    fs::write(&config, serde_json::to_vec_pretty(&spec).expect("json")).expect("write config.json");
    path
}

/// containerd kills a container whose process has exited, and takes
/// runc's "container not running" as done (anything else it retries
/// forever); `kill --all` of a stopped container succeeds.
#[test]
fn kill_of_a_stopped_container_fails_as_runc_does() {
    let rootfs = Rootfs::new();
    let mut seen = Vec::new();
    for rt in &Runtime::both() {
        let dir = TempDir::new("parity-kill");
        let path = bundle(rt, &dir, &rootfs, &["/bin/true"], 0);
        let c = Container { rt, id: unique_name("stopped") };
        let out = rt.run_to_file(&["create", "--bundle", &path, &c.id], &dir.path().join("create.log"));
        assert_eq!(out.status, 0, "{} create: {}", rt.name, out.describe());
        let out = rt.run(&["start", &c.id]);
        assert_eq!(out.status, 0, "{} start: {}", rt.name, out.describe());
        rt.wait_status(&c.id, "stopped");
        let mut statuses = Vec::new();
        for args in [["kill", &c.id, "TERM"], ["kill", &c.id, "KILL"]] {
            let out = rt.run(&args);
            assert!(out.stderr.contains("container not running"), "{} {args:?}: {}", rt.name, out.describe());
            statuses.push(out.status);
        }
        for args in [["kill", "--all", &c.id, "TERM"], ["kill", "--all", &c.id, "KILL"]] {
            let out = rt.run(&args);
            assert_eq!(out.stderr, "", "{} {args:?}: {}", rt.name, out.describe());
            statuses.push(out.status);
        }
        seen.push((rt.name, statuses));
    }
    assert_eq!(seen[0].1, seen[1].1, "kill's exit statuses (TERM, KILL, --all TERM, --all KILL): {seen:?}");
    assert_eq!(seen[0].1, [1, 1, 0, 0], "runc's own: {seen:?}");
}

/// Whether any host process is container `id`'s moat sandbox process.
fn sandbox_process_of(id: &str) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let boot = args.contains(&b"boot".as_slice()) && args.windows(2).any(|w| w == [b"--id", id.as_bytes()]);
        boot.then_some(pid)
    })
}

/// Nothing of container `id` is left: no state, no cgroup, no process.
fn assert_nothing_left(rt: &Runtime, id: &str) {
    let out = rt.run(&["state", id]);
    assert_ne!(out.status, 0, "{} state of {id} after the failure: {}", rt.name, out.describe());
    assert!(out.stderr.contains("does not exist"), "{} state {id}: {}", rt.name, out.describe());
    let left: Vec<_> =
        fs::read_dir(rt.root.path()).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{}: state left behind: {left:?}", rt.name);
    for hierarchy in ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        for cgroup in [Path::new(hierarchy).join(id), Path::new(hierarchy).join("moat").join(id)] {
            assert!(!cgroup.exists(), "{}: cgroup left behind: {}", rt.name, cgroup.display());
        }
    }
    assert_eq!(sandbox_process_of(id), None, "{}: the sandbox process of {id} is left", rt.name);
}

/// Docker reports a container whose program is missing as exit status 127
/// (126 if it cannot run) from the words of the runtime's error, and podman
/// only from those of a failed `create`: create fails with them, under
/// runc and under moat, and leaves nothing.
#[test]
fn a_program_that_does_not_run_fails_in_runcs_words_and_leaves_nothing() {
    let rootfs = Rootfs::new();
    let cases = [
        ("nosuchcmd", "executable file not found in $PATH"),
        ("/bin/nosuch", "no such file or directory"),
        ("/etc/passwd", "permission denied"),
    ];
    for rt in &Runtime::both() {
        for (program, words) in cases {
            let dir = TempDir::new("parity-missing");
            let path = bundle(rt, &dir, &rootfs, &[program], 0);
            let c = Container { rt, id: unique_name("missing") };
            let create = rt.run_to_file(&["create", "--bundle", &path, &c.id], &dir.path().join("create.log"));
            let failed = create;
            assert_eq!(failed.status, 1, "{} create of {program}: {}", rt.name, failed.describe());
            assert!(failed.stderr.contains(words), "{} {program}: want {words:?}: {}", rt.name, failed.describe());
            assert_nothing_left(rt, &c.id);

            let c = Container { rt, id: unique_name("missing-run") };
            let out = rt.run_to_file(&["run", "--bundle", &path, &c.id], &dir.path().join("run.log"));
            assert_eq!(out.status, 1, "{} run of {program}: {}", rt.name, out.describe());
            assert!(out.stderr.contains(words), "{} run {program}: want {words:?}: {}", rt.name, out.describe());
            assert_nothing_left(rt, &c.id);
        }
    }
}

/// runc sets HOME, when the process's env has none, from the container's
/// /etc/passwd entry of the process's uid ("/" without one), for init and
/// for exec'd processes alike.
#[test]
fn home_comes_from_the_containers_passwd() {
    let rootfs = Rootfs::new();
    let passwd = "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n";
    rootfs.write_file("etc/passwd", passwd.as_bytes(), 0o644);
    let echo = ["/bin/sh", "-c", "echo $HOME"];
    for rt in &Runtime::both() {
        for (uid, home) in [(1000, "/home/u"), (0, "/root"), (4242, "/")] {
            let dir = TempDir::new("parity-home");
            let path = bundle(rt, &dir, &rootfs, &echo, uid);
            let c = Container { rt, id: unique_name("home") };
            let out = rt.run(&["run", "--bundle", &path, &c.id]);
            assert_eq!((out.status, out.stdout.trim()), (0, home), "{} run as {uid}: {}", rt.name, out.describe());
        }

        let dir = TempDir::new("parity-home-exec");
        let path = bundle(rt, &dir, &rootfs, &["/bin/sleep", "600"], 0);
        let c = Container { rt, id: unique_name("home-exec") };
        let out = rt.run_to_file(&["create", "--bundle", &path, &c.id], &dir.path().join("create.log"));
        assert_eq!(out.status, 0, "{} create: {}", rt.name, out.describe());
        let out = rt.run(&["start", &c.id]);
        assert_eq!(out.status, 0, "{} start: {}", rt.name, out.describe());
        for (user, home) in [("1000:1000", "/home/u"), ("0:0", "/root")] {
            let mut args = vec!["exec", "--user", user, &c.id];
            args.extend(echo);
            let out = rt.run(&args);
            assert_eq!((out.status, out.stdout.trim()), (0, home), "{} exec as {user}: {}", rt.name, out.describe());
        }
        // containerd's way: the process as JSON.
        let process = serde_json::json!({
            "args": echo, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 1000, "gid": 1000}, "terminal": false,
        });
        let file = dir.path().join("process.json");
        fs::write(&file, process.to_string()).expect("write process.json");
        let out = rt.run(&["exec", "--process", file.to_str().expect("utf-8"), &c.id]);
        assert_eq!((out.status, out.stdout.trim()), (0, "/home/u"), "{} exec --process: {}", rt.name, out.describe());
        let out = rt.run(&["kill", &c.id, "KILL"]);
        assert_eq!(out.status, 0, "{} kill: {}", rt.name, out.describe());
        rt.wait_status(&c.id, "stopped");
    }
}

/// A bind mount's source is a host path the engine chose, and runc's
/// mount(2) follows it when it is a symlink: `-v /etc/localtime:…` (a
/// link into /usr/share/zoneinfo) and `docker run --init` (docker-init is
/// a link) depend on that. The Gofer itself still follows no symlink: the
/// runtime resolves the source before it serves it.
#[test]
fn bind_mount_sources_that_are_symlinks_are_followed_as_runc_does() {
    let rootfs = Rootfs::new();
    let host = TempDir::new("parity-bind-links");
    fs::write(host.path().join("real-file"), "through-the-file-link\n").expect("write real-file");
    fs::create_dir(host.path().join("real-dir")).expect("mkdir real-dir");
    fs::write(host.path().join("real-dir/inside"), "through-the-dir-link\n").expect("write inside");
    std::os::unix::fs::symlink(host.path().join("real-file"), host.path().join("file-link")).expect("symlink");
    std::os::unix::fs::symlink("real-dir", host.path().join("dir-link")).expect("symlink");
    let script = ["/bin/sh", "-c", "cat /mnt-file /mnt-dir/inside"];
    for rt in &Runtime::both() {
        let dir = TempDir::new("parity-bind");
        let path = bundle(rt, &dir, &rootfs, &script, 0);
        let config = dir.path().join("config.json");
        let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
        let mounts = spec["mounts"].as_array_mut().expect("mounts");
        for (dest, link) in [("/mnt-file", "file-link"), ("/mnt-dir", "dir-link")] {
            mounts.push(serde_json::json!({
                "destination": dest, "type": "bind",
                "source": host.path().join(link).to_str().expect("utf-8"), "options": ["rbind", "ro"],
            }));
        }
        fs::write(&config, serde_json::to_vec_pretty(&spec).expect("json")).expect("write config.json");
        rootfs.write_file("mnt-file", b"", 0o644);
        fs::create_dir_all(rootfs.host_path("mnt-dir")).expect("mkdir mnt-dir");
        let c = Container { rt, id: unique_name("bind-link") };
        let out = rt.run(&["run", "--bundle", &path, &c.id]);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "through-the-file-link\nthrough-the-dir-link\n"),
            "{}: {}",
            rt.name,
            out.describe()
        );
    }
}

/// A spec without `hostname` keeps its UTS namespace's name under runc:
/// a new namespace's is the host's, and a pod's containers join the pod's
/// (Kubernetes sets the pod's hostname there only). moat shows the same.
#[test]
fn without_a_hostname_the_uts_namespaces_own_is_kept_as_runc_does() {
    let rootfs = Rootfs::new();
    // A "pod": a UTS namespace of its own with a hostname set in it, killed
    // when the test ends, however it ends.
    struct Pod(std::process::Child);
    impl Drop for Pod {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut pod = Command::new("unshare")
        .args(["--uts", "/bin/sh", "-c", "hostname parity-pod && echo ready && exec sleep 600"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    let stdout = pod.stdout.take().expect("stdout");
    let pod = Pod(pod);
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut ready).expect("read");
    assert_eq!(ready.trim(), "ready");
    let pod_ns = format!("/proc/{}/ns/uts", pod.0.id());
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").expect("host hostname").trim().to_owned();
    for rt in &Runtime::both() {
        for (uts_path, want) in [(None, host_name.as_str()), (Some(pod_ns.as_str()), "parity-pod")] {
            let dir = TempDir::new("parity-hostname");
            let path = bundle(rt, &dir, &rootfs, &["/bin/sh", "-c", "hostname"], 0);
            let config = dir.path().join("config.json");
            let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
            spec.as_object_mut().expect("spec").remove("hostname");
            if let Some(p) = uts_path {
                for ns in spec["linux"]["namespaces"].as_array_mut().expect("namespaces") {
                    if ns["type"] == "uts" {
                        ns["path"] = p.into();
                    }
                }
            }
            fs::write(&config, serde_json::to_vec_pretty(&spec).expect("json")).expect("write config.json");
            let c = Container { rt, id: unique_name("hostname") };
            let out = rt.run(&["run", "--bundle", &path, &c.id]);
            assert_eq!((out.status, out.stdout.trim()), (0, want), "{} ({uts_path:?}): {}", rt.name, out.describe());
        }
    }
    drop(pod);
}

/// `moat spec` writes what `runc spec` writes, but for the differences it
/// documents (bundle.rs, `default_spec`): hostname "moat", and no
/// `/sys/fs/cgroup` mount, for the Sentry has no cgroup file system.
#[test]
fn moat_spec_is_runc_spec_but_for_its_documented_differences() {
    let mut specs = Vec::new();
    for rt in &Runtime::both() {
        let dir = TempDir::new("parity-spec");
        let path = dir.path().to_str().expect("utf-8").to_owned();
        let out = rt.run(&["spec", "--bundle", &path]);
        assert_eq!(out.status, 0, "{} spec: {}", rt.name, out.describe());
        let text = fs::read_to_string(dir.path().join("config.json")).expect("read config.json");
        specs.push((rt.name, serde_json::from_str::<Value>(&text).expect("config.json is JSON")));
    }
    let spec_of = |name: &str| specs.iter().find(|(n, _)| *n == name).map(|(_, s)| s.clone()).expect("both ran");
    let (mut moat, mut runc) = (spec_of("moat"), spec_of("runc"));
    assert_eq!(moat["hostname"], "moat", "{moat:#}");
    assert_eq!(runc["hostname"], "runc", "{runc:#}");
    moat.as_object_mut().expect("spec").remove("hostname");
    runc.as_object_mut().expect("spec").remove("hostname");
    let mounts = runc["mounts"].as_array_mut().expect("runc's mounts");
    let before = mounts.len();
    mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    assert_eq!(mounts.len(), before - 1, "runc spec has one /sys/fs/cgroup mount: {runc:#}");
    assert_eq!(moat, runc, "moat spec differs from runc spec beyond hostname and /sys/fs/cgroup");
}
