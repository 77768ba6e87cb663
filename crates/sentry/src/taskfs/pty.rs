//! Pseudo-terminals: /dev/ptmx hands out a master, /dev/pts/N is its slave.
//! A small line discipline sits between them: canonical editing, echo,
//! ICRNL/ONLCR, and ISIG (^C, ^\, ^Z to the foreground process group).
//! A [`Console`] is such a pair whose master the Sentry itself pumps to and
//! from a host terminal in raw mode: the sandbox's terminal, as gVisor's.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use abi::tty::{
    Termios, Winsize, ECHO, FIONREAD, ICANON, ICRNL, ISIG, IXON, ONLCR, OPOST, TCGETS, TCSETS, TCSETSF, TCSETSW,
    TIOCGPGRP, TIOCGPTN, TIOCGSID, TIOCGWINSZ, TIOCNOTTY, TIOCSCTTY, TIOCSPGRP, TIOCSPTLCK, TIOCSWINSZ, VEOF, VERASE,
    VINTR, VKILL, VQUIT, VSUSP,
};
use abi::{AsBytes, FromBytes};

use crate::auth::current;
use crate::fs::dev::makedev;
use crate::kernel::deliver::{init_drops, send_to_group};
use crate::kernel::signal::{SigInfo, SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGWINCH};
use crate::kernel::Kernel;
use crate::mm::io::drain_into;
use crate::mm::{IoDst, IoSrc};
use crate::vfs::{
    new_fs_id, DirEntry, FileOps, FileType, Inode, InodeRef, IoctlArg, OpenFile, PollMask, Stat, Timespec,
};
use crate::waiter::{WaitQueue, Waiter};
use crate::SysResult;

const CAPACITY: usize = 65536;

/// The longest line canonical mode edits (Linux's N_TTY_BUF_SIZE less the
/// newline): past it, bytes other than a newline are dropped.
const MAX_LINE: usize = 4095;

/// Linux's default termios for a new terminal.
fn default_termios() -> Termios {
    let mut cc = [0u8; 19];
    cc[..17].copy_from_slice(&[3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0xf, 0x17, 0x16, 0]);
    Termios {
        iflag: ICRNL | IXON,
        oflag: OPOST | ONLCR,
        cflag: 0xbf,   // B38400 | CS8 | CREAD | HUPCL
        lflag: 0x8a3b, // ISIG ICANON ECHO ECHOE ECHOK ECHOCTL ECHOKE IEXTEN
        line: 0,
        cc,
    }
}

#[derive(Debug)]
struct State {
    termios: Termios,
    winsize: Winsize,
    /// Bytes the slave may read (completed lines in canonical mode).
    input: VecDeque<u8>,
    /// The line being edited in canonical mode.
    line: Vec<u8>,
    /// Bytes the master may read.
    output: VecDeque<u8>,
    master_open: bool,
    slave_opens: usize,
    locked: bool,
    fg_pgrp: i32,
    session: i32,
    eof_pending: bool,
}

impl State {
    fn cc(&self, i: usize) -> u8 {
        self.termios.cc[i]
    }
}

/// One pseudo-terminal pair.
#[derive(Debug)]
pub struct Pty {
    index: u32,
    state: Mutex<State>,
    wq: WaitQueue,
    k: Weak<Kernel>,
}

impl Pty {
    fn signal_fg(&self, pgrp: i32, sig: i32) {
        let Some(k) = self.k.upgrade() else { return };
        if pgrp <= 0 {
            return;
        }
        let groups: Vec<_> = k.pids.lock().unwrap().groups.values().cloned().collect();
        for g in groups {
            if g.state.lock().unwrap().pgid != pgrp {
                continue;
            }
            // A shell as pid 1 survives the ^C that ends its child.
            if init_drops(&g, sig, &g.threads()) {
                continue;
            }
            send_to_group(&g, SigInfo::kernel(sig));
        }
    }

    /// Input from the master side through the line discipline.
    fn input(&self, data: &[u8]) -> usize {
        let mut s = self.state.lock().unwrap();
        let (iflag, lflag) = (s.termios.iflag, s.termios.lflag);
        let mut signals = Vec::new();
        let mut taken = 0;
        for &b0 in data {
            if s.input.len() + s.line.len() >= CAPACITY {
                break;
            }
            taken += 1;
            let b = if b0 == b'\r' && iflag & ICRNL != 0 { b'\n' } else { b0 };
            // Echoes are dropped while the master's reader is behind (as
            // Linux's are), so that what is typed cannot grow the output
            // buffer past its bound.
            let echo_on = lflag & ECHO != 0 && s.output.len() < CAPACITY;
            if lflag & ISIG != 0 {
                let sig = match b {
                    _ if b == s.cc(VINTR) => Some(SIGINT),
                    _ if b == s.cc(VQUIT) => Some(SIGQUIT),
                    _ if b == s.cc(VSUSP) => Some(SIGTSTP),
                    _ => None,
                };
                if let Some(sig) = sig {
                    s.line.clear();
                    if echo_on {
                        echo(&mut s, b);
                    }
                    signals.push(sig);
                    continue;
                }
            }
            if lflag & ICANON != 0 {
                if b == s.cc(VERASE) {
                    if s.line.pop().is_some() && echo_on {
                        s.output.extend(b"\x08 \x08");
                    }
                    continue;
                }
                if b == s.cc(VKILL) {
                    s.line.clear();
                    continue;
                }
                if b == s.cc(VEOF) {
                    let line = std::mem::take(&mut s.line);
                    if line.is_empty() {
                        s.eof_pending = true;
                    }
                    s.input.extend(line);
                    continue;
                }
                if b != b'\n' && s.line.len() >= MAX_LINE {
                    continue;
                }
                if echo_on {
                    echo(&mut s, b);
                }
                s.line.push(b);
                if b == b'\n' {
                    let line = std::mem::take(&mut s.line);
                    s.input.extend(line);
                }
            } else {
                if echo_on {
                    echo(&mut s, b);
                }
                s.input.push_back(b);
            }
        }
        let pgrp = s.fg_pgrp;
        drop(s);
        self.wq.notify_all();
        for sig in signals {
            self.signal_fg(pgrp, sig);
        }
        taken
    }

    fn ioctl(&self, master: bool, req: u64, arg: &mut IoctlArg) -> SysResult<u64> {
        let mut s = self.state.lock().unwrap();
        match req {
            TCGETS => arg.buf = s.termios.as_bytes().to_vec(),
            TCSETS | TCSETSW | TCSETSF => {
                s.termios = Termios::read_from_prefix(&arg.buf).expect("ioctl copies in a whole termios");
                if req == TCSETSF {
                    s.input.clear();
                }
                // Leaving canonical mode makes the partial line readable.
                if s.termios.lflag & ICANON == 0 {
                    let line = std::mem::take(&mut s.line);
                    s.input.extend(line);
                }
            }
            TIOCGWINSZ => arg.buf = s.winsize.as_bytes().to_vec(),
            TIOCSWINSZ => {
                let new = Winsize::read_from_prefix(&arg.buf).expect("ioctl copies in a whole winsize");
                let changed = s.winsize != new;
                s.winsize = new;
                let pgrp = s.fg_pgrp;
                drop(s);
                if changed {
                    self.signal_fg(pgrp, SIGWINCH);
                }
                return Ok(0);
            }
            TIOCGPGRP => arg.buf = s.fg_pgrp.as_bytes().to_vec(),
            TIOCSPGRP => s.fg_pgrp = i32::read_from_prefix(&arg.buf).expect("ioctl copies in 4 bytes"),
            TIOCGSID => {
                if s.session == 0 {
                    return Err(errno!(ENOTTY));
                }
                arg.buf = s.session.as_bytes().to_vec();
            }
            TIOCSCTTY if !master => {
                // The caller's session takes this terminal; its group is the foreground one.
                let pid = current().0;
                let k = self.k.upgrade().ok_or(errno!(EIO))?;
                let g = k.group(pid).ok_or(errno!(ESRCH))?;
                let (sid, pgid) = {
                    let st = g.state.lock().unwrap();
                    (st.sid, st.pgid)
                };
                if sid != pid {
                    return Err(errno!(EPERM));
                }
                s.session = sid;
                s.fg_pgrp = pgid;
            }
            TIOCNOTTY => {}
            FIONREAD => {
                let n = if master { s.output.len() } else { s.input.len() } as u32;
                arg.buf = n.as_bytes().to_vec();
            }
            TIOCGPTN if master => arg.buf = self.index.as_bytes().to_vec(),
            TIOCSPTLCK if master => {
                s.locked = u32::read_from_prefix(&arg.buf).expect("ioctl copies in 4 bytes") != 0;
            }
            _ => return Err(errno!(ENOTTY)),
        }
        Ok(0)
    }
}

fn echo(s: &mut State, b: u8) {
    let onlcr = s.termios.oflag & (OPOST | ONLCR) == OPOST | ONLCR;
    if b == b'\n' && onlcr {
        s.output.extend(b"\r\n");
    } else if (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f {
        // ^C for 0x03, ^? for DEL (ECHOCTL).
        s.output.extend([b'^', b ^ 0x40]);
    } else {
        s.output.push_back(b);
    }
}

/// Allocates pty indices and finds live ptys for /dev/pts.
#[derive(Debug)]
pub struct PtyRegistry {
    ptys: Mutex<BTreeMap<u32, Weak<Pty>>>,
    k: Weak<Kernel>,
    fs: u64,
}

impl PtyRegistry {
    pub fn new(k: Weak<Kernel>) -> Arc<PtyRegistry> {
        Arc::new(PtyRegistry { ptys: Mutex::new(BTreeMap::new()), k, fs: new_fs_id() })
    }

    fn open_master(&self) -> Arc<dyn FileOps> {
        Arc::new(Master { pty: self.new_pty() })
    }

    fn new_pty(&self) -> Arc<Pty> {
        let mut m = self.ptys.lock().unwrap();
        m.retain(|_, p| p.strong_count() > 0);
        let index = (0..).find(|i| !m.contains_key(i)).expect("a free index");
        let pty = Arc::new(Pty {
            index,
            state: Mutex::new(State {
                termios: default_termios(),
                winsize: Winsize::default(),
                input: VecDeque::new(),
                line: Vec::new(),
                output: VecDeque::new(),
                master_open: true,
                slave_opens: 0,
                locked: true,
                fg_pgrp: 0,
                session: 0,
                eof_pending: false,
            }),
            wq: WaitQueue::default(),
            k: self.k.clone(),
        });
        m.insert(index, Arc::downgrade(&pty));
        pty
    }

    /// Makes a console on the host terminal `host_in` (read) and `host_out`
    /// (written): puts the host terminal in raw mode, so that this pty's
    /// line discipline is the only one, gives the pty its window size, and
    /// starts the threads that pump bytes between them. The pumps end, and
    /// close the host fds, once no counted slave is left.
    pub fn console(&self, host_in: OwnedFd, host_out: OwnedFd) -> std::io::Result<Console> {
        let mut termios = Termios::default();
        host::sys::ioctl_buf(host_in.as_fd(), TCGETS, termios.as_bytes_mut())?;
        make_raw(&mut termios);
        host::sys::ioctl_buf(host_in.as_fd(), TCSETS, termios.as_bytes_mut())?;
        let pty = self.new_pty();
        let winsize = host_winsize(&host_in).unwrap_or_default();
        {
            let mut s = pty.state.lock().unwrap();
            s.locked = false;
            s.winsize = winsize;
            // The console's own slave, which the first process's stdio takes.
            s.slave_opens = 1;
        }
        let pending = pending_at_switch(&host_in, pty.state.lock().unwrap().cc(VEOF));
        let reader = pty.clone();
        std::thread::Builder::new()
            .name(format!("console-{}-in", pty.index))
            .spawn(move || pump_in(&reader, &host_in, winsize, pending))?;
        let writer = pty.clone();
        std::thread::Builder::new()
            .name(format!("console-{}-out", pty.index))
            .spawn(move || pump_out(&writer, &host_out))?;
        let slave = Arc::new(Slave { pty: pty.clone(), counted: true });
        Ok(Console { pty, slave: Mutex::new(Some(slave)) })
    }

    /// The /dev/ptmx inode.
    pub fn ptmx(self: &Arc<Self>) -> InodeRef {
        Arc::new(PtyNode { reg: self.clone(), index: None })
    }

    /// The /dev/pts directory inode.
    pub fn pts(self: &Arc<Self>) -> InodeRef {
        Arc::new(PtsDir { reg: self.clone() })
    }

    fn get(&self, index: u32) -> Option<Arc<Pty>> {
        self.ptys.lock().unwrap().get(&index).and_then(|p| p.upgrade())
    }
}

/// /dev/ptmx (index None) or /dev/pts/N.
#[derive(Debug)]
struct PtyNode {
    reg: Arc<PtyRegistry>,
    index: Option<u32>,
}

impl Inode for PtyNode {
    fn stat(&self) -> SysResult<Stat> {
        let (rdev, mode) = match self.index {
            None => (makedev(5, 2), 0o020666),
            Some(i) => (makedev(136, i), 0o020620),
        };
        let now = Timespec::now();
        Ok(Stat {
            dev: self.reg.fs,
            ino: 2 + self.index.map(|i| i as u64 + 1).unwrap_or(0),
            mode,
            nlink: 1,
            rdev,
            blksize: 1024,
            atime: now,
            mtime: now,
            ctime: now,
            ..Default::default()
        })
    }

    fn open(self: Arc<Self>, _flags: u32) -> SysResult<Arc<dyn FileOps>> {
        match self.index {
            None => Ok(self.reg.open_master()),
            Some(i) => {
                let pty = self.reg.get(i).ok_or(errno!(EIO))?;
                {
                    let mut s = pty.state.lock().unwrap();
                    if s.locked {
                        return Err(errno!(EIO));
                    }
                    s.slave_opens += 1;
                }
                Ok(Arc::new(Slave { pty, counted: true }))
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// devpts: empty, with its own magic number (it is no mount of its own here).
    fn statfs(&self) -> SysResult<crate::vfs::FsSpace> {
        const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
        Ok(crate::vfs::FsSpace { magic: Some(DEVPTS_SUPER_MAGIC), ..Default::default() })
    }

    fn fs_id(&self) -> u64 {
        self.reg.fs
    }

    fn enforces_mode_bits(&self) -> bool {
        false
    }
}

#[derive(Debug)]
struct PtsDir {
    reg: Arc<PtyRegistry>,
}

impl Inode for PtsDir {
    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat { dev: self.reg.fs, ino: 1, mode: 0o040755, nlink: 2, blksize: 4096, ..Default::default() })
    }

    fn lookup(&self, name: &[u8]) -> SysResult<InodeRef> {
        let i: u32 = std::str::from_utf8(name).ok().and_then(|s| s.parse().ok()).ok_or(errno!(ENOENT))?;
        self.reg.get(i).ok_or(errno!(ENOENT))?;
        Ok(Arc::new(PtyNode { reg: self.reg.clone(), index: Some(i) }))
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        let m = self.reg.ptys.lock().unwrap();
        Ok(m.iter()
            .filter(|(_, p)| p.strong_count() > 0)
            .map(|(i, _)| DirEntry { ino: *i as u64 + 3, ftype: FileType::CharDev, name: i.to_string().into_bytes() })
            .collect())
    }

    fn open(self: Arc<Self>, _flags: u32) -> SysResult<Arc<dyn FileOps>> {
        Ok(Arc::new(DirHandle))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// devpts: empty, with its own magic number (it is no mount of its own here).
    fn statfs(&self) -> SysResult<crate::vfs::FsSpace> {
        const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
        Ok(crate::vfs::FsSpace { magic: Some(DEVPTS_SUPER_MAGIC), ..Default::default() })
    }

    fn fs_id(&self) -> u64 {
        self.reg.fs
    }

    fn enforces_mode_bits(&self) -> bool {
        false
    }
}

#[derive(Debug)]
struct DirHandle;
impl FileOps for DirHandle {
    fn read(&self, _f: &OpenFile, _dst: &mut dyn IoDst, _o: u64) -> SysResult<usize> {
        Err(errno!(EISDIR))
    }
}

#[derive(Debug)]
struct Master {
    pty: Arc<Pty>,
}

impl FileOps for Master {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        let mut s = self.pty.state.lock().unwrap();
        if s.output.is_empty() {
            return if s.slave_opens == 0 && !s.locked { Err(errno!(EIO)) } else { Err(errno!(EAGAIN)) };
        }
        let n = drain_into(dst, &mut s.output, usize::MAX)?;
        drop(s);
        self.pty.wq.notify_all();
        Ok(n)
    }

    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        // The line discipline takes at most a buffer's worth.
        let data = src.gather(0, src.size().min(CAPACITY))?;
        match self.pty.input(&data) {
            0 if !data.is_empty() => Err(errno!(EAGAIN)),
            n => Ok(n),
        }
    }

    fn seekable(&self) -> bool {
        false
    }

    fn ioctl(&self, _f: &OpenFile, req: u64, arg: &mut IoctlArg) -> SysResult<u64> {
        self.pty.ioctl(true, req, arg)
    }

    fn poll(&self) -> PollMask {
        let s = self.pty.state.lock().unwrap();
        let mut m = PollMask::OUT;
        if !s.output.is_empty() {
            m |= PollMask::IN;
        }
        if s.slave_opens == 0 && !s.locked {
            m |= PollMask::HUP;
        }
        m
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty.wq)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            dev: 0xf,
            ino: 2,
            mode: 0o020666,
            nlink: 1,
            rdev: makedev(5, 2),
            blksize: 1024,
            ..Default::default()
        })
    }

    fn release(&self, _f: &OpenFile) {
        self.pty.state.lock().unwrap().master_open = false;
        self.pty.wq.notify_all();
    }

    fn is_tty(&self) -> bool {
        true
    }
}

/// A slave end. A counted one holds the terminal open (its master reads EIO
/// once none is left); /dev/tty's, shared by every open of it, does not.
#[derive(Debug)]
struct Slave {
    pty: Arc<Pty>,
    counted: bool,
}

impl FileOps for Slave {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        let mut s = self.pty.state.lock().unwrap();
        if s.input.is_empty() {
            if s.eof_pending {
                s.eof_pending = false;
                return Ok(0);
            }
            return if s.master_open { Err(errno!(EAGAIN)) } else { Ok(0) };
        }
        // A canonical read ends with its line.
        let line = match s.termios.lflag & ICANON != 0 {
            true => s.input.iter().take(dst.space()).position(|&b| b == b'\n').map_or(usize::MAX, |i| i + 1),
            false => usize::MAX,
        };
        let n = drain_into(dst, &mut s.input, line)?;
        drop(s);
        self.pty.wq.notify_all();
        Ok(n)
    }

    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        let mut s = self.pty.state.lock().unwrap();
        if !s.master_open {
            return Err(errno!(EIO));
        }
        if s.output.len() >= CAPACITY {
            return Err(errno!(EAGAIN));
        }
        let onlcr = s.termios.oflag & (OPOST | ONLCR) == OPOST | ONLCR;
        let room = CAPACITY - s.output.len();
        // Output processing looks at each byte: at most the room's worth come in.
        let data = src.gather(0, src.size().min(room))?;
        let mut n = 0;
        for &b in data.iter().take(room) {
            if b == b'\n' && onlcr {
                s.output.extend(b"\r\n");
            } else {
                s.output.push_back(b);
            }
            n += 1;
        }
        drop(s);
        self.pty.wq.notify_all();
        Ok(n)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn ioctl(&self, _f: &OpenFile, req: u64, arg: &mut IoctlArg) -> SysResult<u64> {
        self.pty.ioctl(false, req, arg)
    }

    fn poll(&self) -> PollMask {
        let s = self.pty.state.lock().unwrap();
        let mut m = PollMask::empty();
        if !s.input.is_empty() || s.eof_pending {
            m |= PollMask::IN;
        }
        if s.output.len() < CAPACITY {
            m |= PollMask::OUT;
        }
        if !s.master_open {
            m |= PollMask::HUP;
        }
        m
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty.wq)
    }

    fn stat(&self) -> SysResult<Stat> {
        let rdev = makedev(136, self.pty.index);
        Ok(Stat {
            dev: 0xf,
            ino: 3 + self.pty.index as u64,
            mode: 0o020620,
            nlink: 1,
            rdev,
            blksize: 1024,
            ..Default::default()
        })
    }

    fn release(&self, _f: &OpenFile) {
        if self.counted {
            self.pty.state.lock().unwrap().slave_opens -= 1;
        }
        self.pty.wq.notify_all();
    }

    fn is_tty(&self) -> bool {
        true
    }
}

/// The sandbox's terminal: a pty whose master the Sentry pumps to and from
/// a host terminal (see [`PtyRegistry::console`]).
#[derive(Debug)]
pub struct Console {
    pty: Arc<Pty>,
    /// The counted slave made with the console, until a process takes it.
    slave: Mutex<Option<Arc<Slave>>>,
}

impl Console {
    /// The slave's path in the sandbox.
    pub fn path(&self) -> Vec<u8> {
        format!("/dev/pts/{}", self.pty.index).into_bytes()
    }

    /// The console's slave for a process's stdio, once: one open file
    /// description its fds 0, 1 and 2 share. Later calls, and a second
    /// process, open /dev/pts/N instead.
    pub fn take_slave(&self) -> Option<Arc<dyn FileOps>> {
        self.slave.lock().unwrap().take().map(|s| s as Arc<dyn FileOps>)
    }

    /// What /dev/tty opens: the console's slave, not holding it open.
    pub fn tty(&self) -> Arc<dyn FileOps> {
        Arc::new(Slave { pty: self.pty.clone(), counted: false })
    }

    /// Makes the console the controlling terminal of session `sid`, with
    /// the session leader's group (`sid` too) in the foreground, as a new
    /// session's TIOCSCTTY does.
    pub fn set_controlling(&self, sid: i32) {
        let mut s = self.pty.state.lock().unwrap();
        s.session = sid;
        s.fg_pgrp = sid;
    }
}

impl Drop for Console {
    /// A console no process took (its process did not start) is not held:
    /// its pumps end and give the host terminal back.
    fn drop(&mut self) {
        if self.slave.lock().unwrap().take().is_some() {
            self.pty.state.lock().unwrap().slave_opens -= 1;
            self.pty.wq.notify_all();
        }
    }
}

/// How long a pump sleeps before it looks again at the host terminal's
/// window size and whether the console is still held.
const TICK: Duration = Duration::from_millis(100);

/// Bytes a pump moves per host read or write.
const CHUNK: usize = 4096;

/// `cfmakeraw`: no input translation, no output processing, no echo, no
/// signals, 8-bit bytes one at a time.
fn make_raw(t: &mut Termios) {
    const IGNBRK: u32 = 0x1;
    const BRKINT: u32 = 0x2;
    const PARMRK: u32 = 0x8;
    const ISTRIP: u32 = 0x20;
    const INLCR: u32 = 0x40;
    const IGNCR: u32 = 0x80;
    const ECHONL: u32 = 0x40;
    const IEXTEN: u32 = 0x8000;
    const CSIZE: u32 = 0x30;
    const PARENB: u32 = 0x100;
    const CS8: u32 = 0x30;
    const VTIME: usize = 5;
    const VMIN: usize = 6;
    t.iflag &= !(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.oflag &= !OPOST;
    t.lflag &= !(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.cflag = (t.cflag & !(CSIZE | PARENB)) | CS8;
    t.cc[VMIN] = 1;
    t.cc[VTIME] = 0;
}

fn host_winsize(fd: &OwnedFd) -> Option<Winsize> {
    let mut w = Winsize::default();
    host::sys::ioctl_buf(fd.as_fd(), TIOCGWINSZ, w.as_bytes_mut()).ok()?;
    Some(w)
}

impl Pty {
    /// Whether the console's pumps are done: no counted slave is left, or
    /// the host terminal hung up.
    fn console_done(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.slave_opens == 0 || !s.master_open
    }

    /// The host terminal is gone: the slave reads end of file and writes
    /// fail, and the foreground group gets SIGHUP, as after a hangup.
    fn hang_up(&self) {
        let pgrp = {
            let mut s = self.state.lock().unwrap();
            if !s.master_open {
                return;
            }
            s.master_open = false;
            s.fg_pgrp
        };
        self.wq.notify_all();
        self.signal_fg(pgrp, SIGHUP);
    }

    /// Sleeps until the pty changes or `TICK` passes.
    fn wait_change(&self, waiter: &Arc<Waiter>, ready: impl Fn(&State) -> bool) {
        self.wq.add(waiter);
        if !ready(&self.state.lock().unwrap()) {
            waiter.wait(Instant::now().checked_add(TICK));
        }
        self.wq.remove(waiter);
        waiter.reset();
    }
}

/// Host terminal to the pty's input (through its line discipline), and the
/// host terminal's window size to the pty's. Only this thread waits on the
/// host: a terminal that sends nothing holds up no task.
/// What the host terminal held when it went raw. Its canonical line
/// buffer keeps an EOF (^D, as `script` sends for an empty stdin) as a 0
/// byte, which raw mode then hands over as data: that byte becomes this
/// pty's own EOF, so the app reads end of file, as it would have natively.
fn pending_at_switch(host: &OwnedFd, eof: u8) -> Vec<u8> {
    const POLLIN: i16 = 0x1;
    let mut buf = vec![0u8; CHUNK];
    match host::sys::poll_one(host.as_fd(), POLLIN, 0) {
        Ok(n) if n > 0 => match host::sys::read(host.as_fd(), &mut buf) {
            Ok(n) => buf[..n].iter().map(|&b| if b == 0 { eof } else { b }).collect(),
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn pump_in(pty: &Arc<Pty>, host: &OwnedFd, mut host_size: Winsize, pending: Vec<u8>) {
    const POLLIN: i16 = 0x1;
    let waiter = Waiter::new();
    let mut buf = vec![0u8; CHUNK];
    feed(pty, &waiter, &pending);
    while !pty.console_done() {
        // A resize on the engine's side (TIOCSWINSZ on its master) changes
        // the host terminal's size; the app sees it, and SIGWINCH, here.
        if let Some(now) = host_winsize(host).filter(|w| *w != host_size) {
            host_size = now;
            let mut arg = IoctlArg { raw: 0, buf: now.as_bytes().to_vec(), write_back: false };
            let _ = pty.ioctl(true, TIOCSWINSZ, &mut arg);
        }
        let ready = match host::sys::poll_one(host.as_fd(), POLLIN, TICK.as_millis() as i32) {
            Ok(0) => continue,
            Ok(_) => true,
            Err(_) => false,
        };
        let n = match ready.then(|| host::sys::read(host.as_fd(), &mut buf)) {
            Some(Ok(n)) if n > 0 => n,
            Some(Err(e)) if matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock) => {
                continue
            }
            // End of file, EIO (the far side closed), or poll failing.
            _ => return pty.hang_up(),
        };
        feed(pty, &waiter, &buf[..n]);
    }
}

/// Gives `bytes` to the pty's line discipline, waiting while it is full.
fn feed(pty: &Arc<Pty>, waiter: &Arc<Waiter>, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() && !pty.console_done() {
        let took = pty.input(rest);
        rest = &rest[took..];
        if took == 0 {
            // The app is not reading: wait for room rather than drop what was typed.
            pty.wait_change(waiter, |s| s.input.len() + s.line.len() < CAPACITY || s.slave_opens == 0);
        }
    }
}

/// The pty's output to the host terminal. A host terminal that takes
/// nothing blocks only this thread; the app's writes fill the pty's
/// bounded buffer and then wait, as on Linux.
fn pump_out(pty: &Arc<Pty>, host: &OwnedFd) {
    const POLLOUT: i16 = 0x4;
    let waiter = Waiter::new();
    loop {
        let chunk: Vec<u8> = {
            let mut s = pty.state.lock().unwrap();
            let n = s.output.len().min(CHUNK);
            s.output.drain(..n).collect()
        };
        if chunk.is_empty() {
            if pty.console_done() {
                // Nobody holds the console: a /dev/tty still open reads end of file.
                pty.state.lock().unwrap().master_open = false;
                pty.wq.notify_all();
                return;
            }
            pty.wait_change(&waiter, |s| !s.output.is_empty() || s.slave_opens == 0 || !s.master_open);
            continue;
        }
        pty.wq.notify_all();
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            match host::sys::poll_one(host.as_fd(), POLLOUT, TICK.as_millis() as i32) {
                Ok(0) if pty.state.lock().unwrap().master_open => continue,
                Ok(0) => return,
                Ok(_) => {}
                Err(_) => return pty.hang_up(),
            }
            match host::sys::write(host.as_fd(), rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock) => {}
                Err(_) => return pty.hang_up(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pty() -> Arc<Pty> {
        let reg = PtyRegistry::new(Weak::new());
        let pty = reg.new_pty();
        pty.state.lock().unwrap().slave_opens = 1;
        pty
    }

    #[test]
    fn any_control_character_the_app_sets_echoes_without_overflow() {
        let pty = pty();
        pty.state.lock().unwrap().termios.cc[VINTR] = 0xff;
        assert_eq!(pty.input(&[0xff, 0x1b, 0x03]), 3);
        assert_eq!(pty.state.lock().unwrap().output.iter().copied().collect::<Vec<u8>>(), b"\xff^[^C");
    }

    #[test]
    fn echoes_stop_at_the_output_bound_while_nobody_reads_the_master() {
        let pty = pty();
        pty.state.lock().unwrap().termios.lflag &= !ICANON;
        for _ in 0..(4 * CAPACITY / 1000) {
            pty.input(&[b'\x01'; 1000]);
            pty.state.lock().unwrap().input.clear();
        }
        assert!(pty.state.lock().unwrap().output.len() < CAPACITY + 4);
    }

    #[test]
    fn a_canonical_line_past_the_limit_drops_all_but_its_newline() {
        let pty = pty();
        pty.state.lock().unwrap().termios.lflag &= !ECHO;
        assert_eq!(pty.input(&vec![b'a'; MAX_LINE + 100]), MAX_LINE + 100);
        pty.input(b"\n");
        let s = pty.state.lock().unwrap();
        assert_eq!(s.input.len(), MAX_LINE + 1);
        assert_eq!(s.input.back(), Some(&b'\n'));
    }
}
