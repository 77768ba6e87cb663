//! Boot: builds the memory file, platform, filesystems and the init task,
//! runs until init exits, and reports its wait status.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use abi::Errno;
use host::MemoryFile;

use super::signal::SigAction;
use super::task::{self, Creds, CurrentTask, FsContext, Task, ThreadGroup};
use super::{Kernel, PidTable};
use crate::fs::{dev, gofer::GoferInode, host::HostFile, overlay::OverlayInode, proc, tmpfs::TmpfsInode};
use crate::mm::{MemoryManager, RangeAllocator};
use crate::platform::ptrace::{PtracePlatform, FIRST_FREE_OFF};
use crate::vfs::{FdTable, FileOps, Follow, InodeRef, OpenFile, Vfs};

/// Size of the sparse memory file: the most app memory one sandbox can use.
const MEMORY_FILE_SIZE: u64 = 64 << 30;

/// moat's own stdin, stdout and stderr, handed to init.
#[derive(Debug)]
pub struct HostStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// What to run and with what.
#[derive(Debug)]
pub struct BootConfig {
    /// The connected socket to the Gofer serving the root.
    pub gofer: UnixStream,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub hostname: Vec<u8>,
    pub stdio: HostStdio,
    pub strace: bool,
}

/// Why the sandbox could not start, or how it ended.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The platform or memory could not be set up.
    #[error("cannot start the sandbox: {0}")]
    Host(#[from] std::io::Error),
    /// The Gofer did not answer the 9P handshake.
    #[error("cannot talk to the gofer: {0}")]
    Gofer(#[from] p9::Error),
    /// The root filesystem could not be attached.
    #[error("cannot attach the root filesystem: {0}")]
    Root(Errno),
    /// The first program could not be executed.
    #[error("cannot execute {path}: {errno}")]
    Exec { path: String, errno: Errno },
}

/// Boots the sandbox and runs it until init exits; returns init's wait status.
pub fn boot(cfg: BootConfig) -> Result<i32, BootError> {
    let mem = Arc::new(MemoryFile::new(MEMORY_FILE_SIZE)?);
    let platform = PtracePlatform::new(mem.clone())?;
    let alloc = RangeAllocator::new(mem.clone(), FIRST_FREE_OFF);

    let client = Arc::new(p9::Client::new(cfg.gofer, 1 << 20)?);
    let lower = GoferInode::attach(client).map_err(BootError::Root)?;
    let root: InodeRef = OverlayInode::new_root(lower);
    let vfs = Arc::new(Vfs::new(root.clone()));

    let stdin = HostFile::new(cfg.stdio.stdin);
    let tty: Option<Arc<dyn FileOps>> = if stdin.is_tty() { Some(stdin.clone()) } else { None };
    let k = Arc::new_cyclic(|weak: &Weak<Kernel>| {
        vfs.mounts.mount(b"/", root.clone(), "overlay", "rootfs");
        vfs.mounts.mount(b"/proc", proc::new_procfs(weak.clone()), "proc", "proc");
        vfs.mounts.mount(
            b"/dev",
            dev::new_devfs(tty, Some(crate::fs::pty::PtyRegistry::new(weak.clone()))),
            "devtmpfs",
            "dev",
        );
        vfs.mounts.mount(b"/tmp", TmpfsInode::new_fs(0o1777), "tmpfs", "tmpfs");
        vfs.mounts.mount(b"/dev/shm", TmpfsInode::new_fs(0o1777), "tmpfs", "shm");
        vfs.mounts.mount(b"/sys", crate::fs::sys::new_sysfs(host::sys::cpu_count()), "sysfs", "sysfs");
        Kernel {
            platform: Box::new(platform),
            mem: mem.clone(),
            alloc: alloc.clone(),
            vfs: vfs.clone(),
            pids: Mutex::new(PidTable::default()),
            boot_time: Instant::now(),
            strace: cfg.strace,
            hostname: Mutex::new(cfg.hostname.clone()),
            unimplemented: Mutex::new(BTreeMap::new()),
            init_exit: Mutex::new(None),
            init_exit_cv: std::sync::Condvar::new(),
            futexes: Default::default(),
            locks: Default::default(),
            flocks: Default::default(),
            inotify: Default::default(),
        }
    });

    let cwd = vfs.walk(&vfs.root, &vfs.root, &cfg.cwd, Follow::Yes).unwrap_or_else(|_| vfs.root.clone());
    let mut fds = FdTable::default();
    for (i, f) in [stdin as Arc<dyn FileOps>, HostFile::new(cfg.stdio.stdout), HostFile::new(cfg.stdio.stderr)]
        .into_iter()
        .enumerate()
    {
        let flags = if i == 0 { 0 } else { 1 };
        fds.set(i as i32, OpenFile::new(f, None, flags), false).expect("fds 0-2 are valid");
    }
    let fs = FsContext { root: vfs.root.clone(), cwd, umask: 0o022 };
    let init = {
        let mut pids = k.pids.lock().unwrap();
        let pid = pids.alloc();
        debug_assert_eq!(pid, 1);
        let tg = ThreadGroup::new(
            pid,
            None,
            MemoryManager::new(alloc.clone()),
            fds,
            fs,
            Creds::default(),
            [SigAction::default(); 64],
            pid,
            pid,
            Vec::new(),
            Vec::new(),
        );
        let t = Task::new(pid, tg.clone(), 0);
        tg.state.lock().unwrap().threads.push(t.clone());
        pids.groups.insert(pid, tg);
        pids.tasks.insert(pid, t.clone());
        t
    };

    let (tx, rx) = std::sync::mpsc::channel::<Result<(), (Vec<u8>, Errno)>>();
    let k2 = k.clone();
    let argv = cfg.argv;
    let envp = cfg.envp;
    std::thread::Builder::new().name("task-1".into()).spawn(move || {
        let ctx = match k2.platform.new_context() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err((b"stub".to_vec(), Errno(e.raw_os_error().unwrap_or(5)))));
                init.tg.begin_exit(task::signaled(9, false));
                return task::exit_thread(&k2, &init);
            }
        };
        let regs = match ctx.initial_regs() {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err((b"stub".to_vec(), Errno(e.raw_os_error().unwrap_or(5)))));
                init.tg.begin_exit(task::signaled(9, false));
                return task::exit_thread(&k2, &init);
            }
        };
        let mut cur = CurrentTask { k: k2.clone(), task: init.clone(), ctx, regs, restart: None };
        task::set_current(1, 1);
        let path = resolve_command(&argv, &envp);
        let mut result = Err(Errno::ENOENT);
        for p in &path {
            result = crate::syscalls::exec_initial(&mut cur, p, argv.clone(), envp.clone());
            if result != Err(Errno::ENOENT) {
                break;
            }
        }
        match result {
            Ok(()) => {
                let _ = tx.send(Ok(()));
                cur.run();
            }
            Err(e) => {
                let _ = tx.send(Err((argv.first().cloned().unwrap_or_default(), e)));
                cur.tg().begin_exit(task::exited(127));
                drop(cur);
                task::exit_thread(&k2, &init);
            }
        }
    })?;
    if let Ok(Err((path, errno))) = rx.recv() {
        return Err(BootError::Exec { path: String::from_utf8_lossy(&path).into_owned(), errno });
    }
    let status = {
        let mut done = k.init_exit.lock().unwrap();
        while done.is_none() {
            done = k.init_exit_cv.wait(done).unwrap();
        }
        done.expect("checked above")
    };
    if k.strace {
        let counts = k.unimplemented.lock().unwrap();
        if !counts.is_empty() {
            let list: Vec<String> = counts
                .iter()
                .map(|(nr, n)| match abi::sysno::name(*nr) {
                    Some(name) => format!("{name}({nr}) x{n}"),
                    None => format!("{nr} x{n}"),
                })
                .collect();
            super::log_line(format_args!("moat: unimplemented syscalls called: {}", list.join(", ")));
        }
    }
    Ok(status)
}

/// Candidate paths for argv[0]: itself if it has a '/', else each $PATH directory.
fn resolve_command(argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let Some(cmd) = argv.first() else { return vec![] };
    if cmd.contains(&b'/') {
        return vec![cmd.clone()];
    }
    let path = envp
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(|p| p.to_vec())
        .unwrap_or_else(|| b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec());
    path.split(|&b| b == b':')
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut p = d.to_vec();
            p.push(b'/');
            p.extend_from_slice(cmd);
            p
        })
        .collect()
}
