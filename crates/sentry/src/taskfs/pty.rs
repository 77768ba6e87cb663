//! Pseudo-terminals: /dev/ptmx hands out a master, /dev/pts/N is its slave.
//! A small line discipline sits between them: canonical editing, echo,
//! ICRNL/ONLCR, and ISIG (^C, ^\, ^Z to the foreground process group).

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use abi::tty::{
    Termios, Winsize, ECHO, FIONREAD, ICANON, ICRNL, ISIG, IXON, ONLCR, OPOST, TCGETS, TCSETS, TCSETSF, TCSETSW,
    TIOCGPGRP, TIOCGPTN, TIOCGSID, TIOCGWINSZ, TIOCNOTTY, TIOCSCTTY, TIOCSPGRP, TIOCSPTLCK, TIOCSWINSZ, VEOF, VERASE,
    VINTR, VKILL, VQUIT, VSUSP,
};
use abi::{AsBytes, FromBytes};

use crate::auth::current;
use crate::fs::dev::makedev;
use crate::kernel::deliver::send_to_group;
use crate::kernel::signal::{SigInfo, SIGINT, SIGQUIT, SIGTSTP, SIGWINCH};
use crate::kernel::Kernel;
use crate::mm::io::drain_into;
use crate::mm::{IoDst, IoSrc};
use crate::vfs::{
    new_fs_id, DirEntry, FileOps, FileType, Inode, InodeRef, IoctlArg, OpenFile, PollMask, Stat, Timespec,
};
use crate::waiter::WaitQueue;
use crate::SysResult;

const CAPACITY: usize = 65536;

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
            if g.state.lock().unwrap().pgid == pgrp {
                send_to_group(&g, SigInfo::kernel(sig));
            }
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
            if lflag & ISIG != 0 {
                let sig = match b {
                    _ if b == s.cc(VINTR) => Some(SIGINT),
                    _ if b == s.cc(VQUIT) => Some(SIGQUIT),
                    _ if b == s.cc(VSUSP) => Some(SIGTSTP),
                    _ => None,
                };
                if let Some(sig) = sig {
                    s.line.clear();
                    if lflag & ECHO != 0 {
                        s.output.extend([b'^', b + 0x40, b'\r', b'\n']);
                    }
                    signals.push(sig);
                    continue;
                }
            }
            if lflag & ICANON != 0 {
                if b == s.cc(VERASE) {
                    if s.line.pop().is_some() && lflag & ECHO != 0 {
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
                if lflag & ECHO != 0 {
                    echo(&mut s, b);
                }
                s.line.push(b);
                if b == b'\n' {
                    let line = std::mem::take(&mut s.line);
                    s.input.extend(line);
                }
            } else {
                if lflag & ECHO != 0 {
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
    } else if b < 0x20 && b != b'\n' && b != b'\t' {
        s.output.extend([b'^', b + 0x40]);
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
        Arc::new(Master { pty })
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
                Ok(Arc::new(Slave { pty }))
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
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

#[derive(Debug)]
struct Slave {
    pty: Arc<Pty>,
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
        self.pty.state.lock().unwrap().slave_opens -= 1;
        self.pty.wq.notify_all();
    }

    fn is_tty(&self) -> bool {
        true
    }
}
