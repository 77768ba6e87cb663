//! System V IPC: message queues and semaphore sets, one id space per kind
//! for the whole sandbox (its IPC namespace), with Linux's ids, keys, permissions and limits.
//!
//! Ids are made as Linux makes them (index + sequence × 32768, the index
//! allocated cyclically), permissions are checked as `ipcperms` does, and the
//! limits are Linux's defaults. Past them, the sandbox as a whole is bounded:
//! [`MAX_QUEUED_BYTES`] of queued messages and [`MAX_SEMS`] semaphores, so an
//! app cannot make the Sentry allocate without end through 32,000 queues.
//! A sleeper waits on its kind's one wait queue and re-checks on every change:
//! simple, and never loses a wake-up.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::current::CurrentTask;
use crate::auth::Creds;
use crate::waiter::WaitQueue;
use crate::SysResult;

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_NOWAIT: i32 = 0o4000;
pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;
pub const MSG_STAT: i32 = 11;
pub const MSG_INFO: i32 = 12;
pub const MSG_STAT_ANY: i32 = 13;
pub const MSG_NOERROR: i32 = 0o10000;
pub const MSG_EXCEPT: i32 = 0o20000;
pub const MSG_COPY: i32 = 0o40000;
pub const GETPID: i32 = 11;
pub const GETVAL: i32 = 12;
pub const GETALL: i32 = 13;
pub const GETNCNT: i32 = 14;
pub const GETZCNT: i32 = 15;
pub const SETVAL: i32 = 16;
pub const SETALL: i32 = 17;
pub const SEM_STAT: i32 = 18;
pub const SEM_INFO: i32 = 19;
pub const SEM_STAT_ANY: i32 = 20;
pub const SEM_UNDO: i16 = 0x1000;

/// Linux's CAP_IPC_OWNER: bypasses IPC permission checks.
const CAP_IPC_OWNER: u32 = 15;
const CAP_SYS_ADMIN: u32 = crate::auth::capability::CAP_SYS_ADMIN;
const CAP_SYS_RESOURCE: u32 = crate::auth::capability::CAP_SYS_RESOURCE;

/// Ids are index + sequence × IPCMNI.
const IPCMNI: i32 = 32768;
/// Most message queues (Linux's MSGMNI default).
pub const MSGMNI: usize = 32000;
/// Largest message (MSGMAX).
pub const MSGMAX: usize = 8192;
/// A new queue's capacity in bytes (MSGMNB).
pub const MSGMNB: u64 = 16384;
/// Most semaphores in one set (SEMMSL).
pub const SEMMSL: usize = 32000;
/// Most semaphore sets (SEMMNI).
pub const SEMMNI: usize = 32000;
/// Most semaphores in all sets, as Linux counts them (SEMMNS = SEMMNI × SEMMSL).
pub const SEMMNS: usize = SEMMNI * SEMMSL;
/// Most operations in one semop (SEMOPM).
pub const SEMOPM: usize = 500;
/// Largest semaphore value (SEMVMX), and bound of an undo adjustment (SEMAEM).
pub const SEMVMX: i32 = 32767;
/// The sandbox's bound on bytes held in all message queues, each message
/// counted with [`MSG_OVERHEAD`]: a send past it waits as on a full queue.
pub const MAX_QUEUED_BYTES: u64 = 64 << 20;
/// What one queued message costs the sandbox besides its text.
const MSG_OVERHEAD: u64 = 64;
/// The sandbox's bound on semaphores in all sets (Linux's SEMMNS would
/// allow a billion): semget past it fails with ENOSPC, as past SEMMNS.
pub const MAX_SEMS: usize = 1 << 20;

/// `struct ipc64_perm` without its padding.
#[derive(Debug, Clone)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
    pub seq: u32,
}

impl Perm {
    /// Linux's ipcperms: whether `creds` may have the access `flag` asks (its rwx bits).
    fn allows(&self, creds: &Creds, flag: i32) -> bool {
        let flag = flag as u32;
        let requested = (flag >> 6) | (flag >> 3) | flag;
        let mut granted = self.mode;
        if creds.euid == self.cuid || creds.euid == self.uid {
            granted >>= 6;
        } else if creds.in_group(self.cgid) || creds.in_group(self.gid) {
            granted >>= 3;
        }
        requested & !granted & 0o7 == 0 || creds.has(CAP_IPC_OWNER)
    }

    fn check(&self, creds: &Creds, flag: i32) -> SysResult<()> {
        if self.allows(creds, flag) {
            Ok(())
        } else {
            Err(errno!(EACCES))
        }
    }

    /// IPC_SET and IPC_RMID: the owner, the creator or CAP_SYS_ADMIN.
    fn check_owner(&self, creds: &Creds) -> SysResult<()> {
        if creds.euid == self.cuid || creds.euid == self.uid || creds.has(CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(errno!(EPERM))
        }
    }

    /// The 48 bytes of x86-64's `struct ipc64_perm`.
    fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.key as u32, self.uid, self.gid, self.cuid, self.cgid, self.mode] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&(self.seq as u16).to_ne_bytes());
        out.extend_from_slice(&[0; 2 + 4 + 16]);
    }
}

/// What IPC_SET takes from the app's `struct ipc64_perm`.
#[derive(Debug)]
pub struct PermSet {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl PermSet {
    /// Reads the uid, gid and mode of the `ipc64_perm` at the start of `b`.
    pub fn decode(b: &[u8]) -> PermSet {
        PermSet { uid: ne_u32(b, 4), gid: ne_u32(b, 8), mode: ne_u32(b, 20) }
    }
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fn ne_u64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

fn put_u64s(out: &mut Vec<u8>, vals: &[u64]) {
    for v in vals {
        out.extend_from_slice(&v.to_ne_bytes());
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

struct Obj<T> {
    perm: Perm,
    /// Unique for the sandbox's life: a sleeper whose object is gone, or was
    /// replaced under the same index, sees EIDRM.
    serial: u64,
    body: T,
}

/// One kind's id space.
struct Space<T> {
    objs: BTreeMap<i32, Obj<T>>,
    last_idx: i32,
    seq: u32,
    serials: u64,
    max: usize,
}

impl<T> Space<T> {
    fn new(max: usize) -> Space<T> {
        Space { objs: BTreeMap::new(), last_idx: -1, seq: 0, serials: 0, max }
    }

    fn find_key(&self, key: i32) -> Option<i32> {
        self.objs.iter().find(|(_, o)| o.perm.key == key).map(|(i, _)| *i)
    }

    fn id_of(idx: i32, o: &Obj<T>) -> i32 {
        o.perm.seq as i32 * IPCMNI + idx
    }

    /// The object with this id: EINVAL for none (as Linux's ipc_obtain_object_check).
    fn get(&self, id: i32) -> SysResult<&Obj<T>> {
        let o = self.objs.get(&(id.rem_euclid(IPCMNI))).ok_or(errno!(EINVAL))?;
        if id < 0 || o.perm.seq as i32 != id / IPCMNI {
            return Err(errno!(EINVAL));
        }
        Ok(o)
    }

    fn get_mut(&mut self, id: i32) -> SysResult<&mut Obj<T>> {
        self.get(id)?;
        Ok(self.objs.get_mut(&id.rem_euclid(IPCMNI)).unwrap())
    }

    /// The object with this id if it is still the one a sleeper found (EIDRM otherwise).
    fn still(&mut self, id: i32, serial: u64) -> SysResult<&mut Obj<T>> {
        match self.get_mut(id) {
            Ok(o) if o.serial == serial => Ok(o),
            _ => Err(errno!(EIDRM)),
        }
    }

    /// Adds an object made by `body`, as ipc_addid does: the next free index
    /// after the last one given, the sequence bumped on wrapping.
    fn add(&mut self, key: i32, mode: u32, creds: &Creds, body: T) -> SysResult<i32> {
        if self.objs.len() >= self.max {
            return Err(errno!(ENOSPC));
        }
        let free = |from: i32, to: i32| (from..to).find(|i| !self.objs.contains_key(i));
        let idx = free(self.last_idx + 1, IPCMNI).or_else(|| free(0, self.last_idx + 1)).ok_or(errno!(ENOSPC))?;
        if idx <= self.last_idx {
            self.seq = (self.seq + 1) % 65536;
        }
        self.last_idx = idx;
        self.serials += 1;
        let perm =
            Perm { key, uid: creds.euid, gid: creds.egid, cuid: creds.euid, cgid: creds.egid, mode, seq: self.seq };
        self.objs.insert(idx, Obj { perm, serial: self.serials, body });
        Ok(self.seq as i32 * IPCMNI + idx)
    }

    /// msgget/semget's key lookup: the id of the object for `key`, made by
    /// `make` if there is none and IPC_CREAT asks; `more` checks an existing one.
    fn get_or_make(
        &mut self,
        key: i32,
        flags: i32,
        creds: &Creds,
        make: impl FnOnce() -> SysResult<T>,
        more: impl FnOnce(&T) -> SysResult<()>,
    ) -> SysResult<i32> {
        let mode = (flags & 0o777) as u32;
        if key != IPC_PRIVATE {
            if let Some(idx) = self.find_key(key) {
                if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                    return Err(errno!(EEXIST));
                }
                let o = &self.objs[&idx];
                o.perm.check(creds, flags)?;
                more(&o.body)?;
                return Ok(Self::id_of(idx, o));
            }
            if flags & IPC_CREAT == 0 {
                return Err(errno!(ENOENT));
            }
        }
        if self.objs.len() >= self.max {
            return Err(errno!(ENOSPC));
        }
        let body = make()?;
        self.add(key, mode, creds, body)
    }

    /// The object at index `idx` for MSG_STAT/SEM_STAT, and its id.
    fn by_index(&self, idx: i32) -> SysResult<(i32, &Obj<T>)> {
        let o = self.objs.get(&idx).ok_or(errno!(EINVAL))?;
        Ok((Self::id_of(idx, o), o))
    }

    /// The highest index in use, as IPC_INFO returns it (0 with none).
    fn max_idx(&self) -> u64 {
        self.objs.keys().next_back().map_or(0, |i| *i as u64)
    }

    fn set_perm(&mut self, id: i32, creds: &Creds, set: &PermSet) -> SysResult<&mut Obj<T>> {
        let o = self.get_mut(id)?;
        o.perm.check_owner(creds)?;
        o.perm.uid = set.uid;
        o.perm.gid = set.gid;
        o.perm.mode = (o.perm.mode & !0o777) | (set.mode & 0o777);
        Ok(o)
    }
}

struct Message {
    mtype: i64,
    text: Vec<u8>,
}

struct MsgQueue {
    msgs: VecDeque<Message>,
    qbytes: u64,
    cbytes: u64,
    stime: i64,
    rtime: i64,
    ctime: i64,
    lspid: i32,
    lrpid: i32,
}

struct Msgs {
    space: Space<MsgQueue>,
    /// Bytes all queues hold, each message with its overhead.
    queued: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sem {
    val: i32,
    pid: i32,
}

struct SemSet {
    sems: Vec<Sem>,
    otime: i64,
    ctime: i64,
    /// Sleepers: (tid, semaphore its blocking operation waits on, waits for zero).
    sleepers: Vec<(i32, u16, bool)>,
}

struct Sems {
    space: Space<SemSet>,
    used: usize,
    /// SEM_UNDO adjustments by process, then by (set id, semaphore); never zero.
    undo: HashMap<i32, BTreeMap<(i32, u16), i32>>,
}

impl Sems {
    fn forget_undo(&mut self, id: i32, num: Option<u16>) {
        for adj in self.undo.values_mut() {
            adj.retain(|&(i, n), _| i != id || num.is_some_and(|num| num != n));
        }
        self.undo.retain(|_, adj| !adj.is_empty());
    }
}

/// One operation of semop: `struct sembuf`.
#[derive(Debug, Clone, Copy)]
pub struct SemBuf {
    pub num: u16,
    pub op: i16,
    pub flg: i16,
}

/// The sandbox's System V message queues and semaphore sets.
pub struct Sysv {
    msgs: Mutex<Msgs>,
    msg_wait: WaitQueue,
    sems: Mutex<Sems>,
    sem_wait: WaitQueue,
}

impl std::fmt::Debug for Sysv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sysv").finish_non_exhaustive()
    }
}

impl Default for Sysv {
    fn default() -> Sysv {
        Sysv {
            msgs: Mutex::new(Msgs { space: Space::new(MSGMNI), queued: 0 }),
            msg_wait: WaitQueue::default(),
            sems: Mutex::new(Sems { space: Space::new(SEMMNI), used: 0, undo: HashMap::new() }),
            sem_wait: WaitQueue::default(),
        }
    }
}

/// What one try at a blocking operation came to.
enum Try<T> {
    Done(T),
    Wait,
}

/// Sleeps `t` on `q`, running `attempt` (with the first-try flag) until it is done.
/// A signal gives `on_signal`, the deadline passing EAGAIN.
fn sleep_until<T>(
    t: &CurrentTask,
    q: &WaitQueue,
    deadline: Option<Instant>,
    on_signal: crate::Error,
    mut attempt: impl FnMut() -> SysResult<Try<T>>,
) -> SysResult<T> {
    // An inner Ok(Err) is the operation's own failure, which may itself be EAGAIN.
    let r = t.block_on(&[q], deadline, || match attempt() {
        Ok(Try::Done(v)) => Ok(Ok(v)),
        Ok(Try::Wait) => Err(errno!(EAGAIN)),
        Err(e) => Ok(Err(e)),
    });
    match r {
        Ok(inner) => inner,
        Err(e) if e.as_restart().is_some() => Err(on_signal),
        Err(e) if e == abi::Errno::ETIMEDOUT => Err(errno!(EAGAIN)),
        Err(e) => Err(e),
    }
}

impl Sysv {
    /// msgget(2).
    pub fn msgget(&self, t: &CurrentTask, key: i32, flags: i32) -> SysResult<u64> {
        let creds = t.creds();
        let mut m = self.msgs.lock().unwrap();
        let make = || {
            let c = now();
            Ok(MsgQueue {
                msgs: VecDeque::new(),
                qbytes: MSGMNB,
                cbytes: 0,
                stime: 0,
                rtime: 0,
                ctime: c,
                lspid: 0,
                lrpid: 0,
            })
        };
        Ok(m.space.get_or_make(key, flags, &creds, make, |_| Ok(()))? as u64)
    }

    /// msgsnd(2) of a message already copied in: waits while the queue (or
    /// the sandbox's bound) is full unless IPC_NOWAIT.
    pub fn msgsnd(&self, t: &CurrentTask, id: i32, mtype: i64, text: Vec<u8>, flags: i32) -> SysResult<u64> {
        let creds = t.creds();
        let serial = {
            let m = self.msgs.lock().unwrap();
            let o = m.space.get(id)?;
            o.perm.check(&creds, 0o222)?;
            o.serial
        };
        let mut text = Some(text);
        let mut attempt = || -> SysResult<Try<u64>> {
            let mut m = self.msgs.lock().unwrap();
            let Msgs { space, queued } = &mut *m;
            let q = &mut space.still(id, serial)?.body;
            let len = text.as_ref().map_or(0, |v| v.len()) as u64;
            let fits = len + q.cbytes <= q.qbytes && (q.msgs.len() as u64) < q.qbytes;
            if !fits || *queued + len + MSG_OVERHEAD > MAX_QUEUED_BYTES {
                return if flags & IPC_NOWAIT != 0 { Err(errno!(EAGAIN)) } else { Ok(Try::Wait) };
            }
            q.msgs.push_back(Message { mtype, text: text.take().unwrap_or_default() });
            q.cbytes += len;
            q.lspid = t.pid();
            q.stime = now();
            *queued += len + MSG_OVERHEAD;
            self.msg_wait.notify_all();
            Ok(Try::Done(0))
        };
        match attempt()? {
            Try::Done(v) => Ok(v),
            Try::Wait => sleep_until(t, &self.msg_wait, None, crate::Error::restart(crate::Restart::NoHand), attempt),
        }
    }

    /// msgrcv(2): the chosen message goes to `buf` (its type, then at most
    /// `size` bytes of text) while the queue is locked, so one that cannot be
    /// written stays queued.
    pub fn msgrcv(&self, t: &CurrentTask, id: i32, buf: u64, size: usize, msgtyp: i64, flags: i32) -> SysResult<u64> {
        if id < 0 || (size as i64) < 0 {
            return Err(errno!(EINVAL));
        }
        let copy = flags & MSG_COPY != 0;
        if copy && (flags & MSG_EXCEPT != 0 || flags & IPC_NOWAIT == 0) {
            return Err(errno!(EINVAL));
        }
        let size = if copy { size.min(MSGMAX) } else { size };
        let creds = t.creds();
        let serial = self.msgs.lock().unwrap().space.get(id)?.serial;
        let attempt = || -> SysResult<Try<u64>> {
            let mut m = self.msgs.lock().unwrap();
            let Msgs { space, queued } = &mut *m;
            let o = space.still(id, serial)?;
            o.perm.check(&creds, 0o444)?;
            let q = &mut o.body;
            let Some(at) = find_msg(&q.msgs, msgtyp, flags) else {
                return if flags & IPC_NOWAIT != 0 { Err(errno!(ENOMSG)) } else { Ok(Try::Wait) };
            };
            let msg = &q.msgs[at];
            if size < msg.text.len() && flags & MSG_NOERROR == 0 {
                return Err(errno!(E2BIG));
            }
            let n = size.min(msg.text.len());
            let mut out = Vec::with_capacity(8 + n);
            out.extend_from_slice(&msg.mtype.to_ne_bytes());
            out.extend_from_slice(&msg.text[..n]);
            t.write_mem(buf, &out)?;
            if !copy {
                let msg = q.msgs.remove(at).unwrap_or_else(|| unreachable!("found above"));
                q.cbytes -= msg.text.len() as u64;
                q.lrpid = t.pid();
                q.rtime = now();
                *queued -= msg.text.len() as u64 + MSG_OVERHEAD;
                self.msg_wait.notify_all();
            }
            Ok(Try::Done(n as u64))
        };
        match attempt()? {
            Try::Done(v) => Ok(v),
            Try::Wait => sleep_until(t, &self.msg_wait, None, crate::Error::restart(crate::Restart::NoHand), attempt),
        }
    }

    /// msgctl(2). `buf` is the app's `msqid64_ds` (120 bytes), read for
    /// IPC_SET by `read` and written for the stat commands by `write`.
    pub fn msgctl(
        &self,
        t: &CurrentTask,
        id: i32,
        cmd: i32,
        read: impl FnOnce(usize) -> SysResult<Vec<u8>>,
        write: impl FnOnce(&[u8]) -> SysResult<()>,
    ) -> SysResult<u64> {
        if id < 0 || cmd < 0 {
            return Err(errno!(EINVAL));
        }
        let creds = t.creds();
        match cmd {
            IPC_INFO | MSG_INFO => {
                let (max, info) = {
                    let m = self.msgs.lock().unwrap();
                    let msgs: usize = m.space.objs.values().map(|o| o.body.msgs.len()).sum();
                    let bytes: u64 = m.space.objs.values().map(|o| o.body.cbytes).sum();
                    let (pool, map, tql) = if cmd == MSG_INFO {
                        (m.space.objs.len() as i32, msgs as i32, bytes as i32)
                    } else {
                        ((MSGMNI as u64 * MSGMNB / 1024) as i32, MSGMNB as i32, MSGMNB as i32)
                    };
                    (m.space.max_idx(), [pool, map, MSGMAX as i32, MSGMNB as i32, MSGMNI as i32, 16, tql])
                };
                let mut out: Vec<u8> = info.iter().flat_map(|v| v.to_ne_bytes()).collect();
                out.extend_from_slice(&0xffffu16.to_ne_bytes());
                out.extend_from_slice(&[0; 2]);
                write(&out)?;
                Ok(max)
            }
            IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
                let (ret, out) = {
                    let m = self.msgs.lock().unwrap();
                    let (ret, o) = if cmd == IPC_STAT { (0, m.space.get(id)?) } else { m.space.by_index(id)? };
                    if cmd != MSG_STAT_ANY {
                        o.perm.check(&creds, 0o444)?;
                    }
                    let q = &o.body;
                    let mut out = Vec::with_capacity(120);
                    o.perm.encode(&mut out);
                    put_u64s(
                        &mut out,
                        &[q.stime as u64, q.rtime as u64, q.ctime as u64, q.cbytes, q.msgs.len() as u64, q.qbytes],
                    );
                    out.extend_from_slice(&q.lspid.to_ne_bytes());
                    out.extend_from_slice(&q.lrpid.to_ne_bytes());
                    out.extend_from_slice(&[0; 16]);
                    (ret as u64, out)
                };
                write(&out)?;
                Ok(ret)
            }
            IPC_SET => {
                let b = read(120)?;
                let qbytes = ne_u64(&b, 48 + 5 * 8);
                let mut m = self.msgs.lock().unwrap();
                let o = m.space.get(id)?;
                o.perm.check_owner(&creds)?;
                if qbytes > MSGMNB && !creds.has(CAP_SYS_RESOURCE) {
                    return Err(errno!(EPERM));
                }
                let o = m.space.set_perm(id, &creds, &PermSet::decode(&b))?;
                o.body.qbytes = qbytes;
                o.body.ctime = now();
                self.msg_wait.notify_all();
                Ok(0)
            }
            IPC_RMID => {
                let mut m = self.msgs.lock().unwrap();
                m.space.get(id)?.perm.check_owner(&creds)?;
                let o = m.space.objs.remove(&id.rem_euclid(IPCMNI)).unwrap_or_else(|| unreachable!("found above"));
                m.queued -= o.body.msgs.iter().map(|msg| msg.text.len() as u64 + MSG_OVERHEAD).sum::<u64>();
                self.msg_wait.notify_all();
                Ok(0)
            }
            _ => Err(errno!(EINVAL)),
        }
    }

    /// semget(2).
    pub fn semget(&self, t: &CurrentTask, key: i32, nsems: i32, flags: i32) -> SysResult<u64> {
        if nsems < 0 || nsems as usize > SEMMSL {
            return Err(errno!(EINVAL));
        }
        let creds = t.creds();
        let mut s = self.sems.lock().unwrap();
        let Sems { space, used, .. } = &mut *s;
        let n = nsems as usize;
        let make = || {
            if n == 0 {
                return Err(errno!(EINVAL));
            }
            if *used + n > SEMMNS.min(MAX_SEMS) {
                return Err(errno!(ENOSPC));
            }
            *used += n;
            Ok(SemSet { sems: vec![Sem { val: 0, pid: 0 }; n], otime: 0, ctime: now(), sleepers: Vec::new() })
        };
        let more = |set: &SemSet| if n > set.sems.len() { Err(errno!(EINVAL)) } else { Ok(()) };
        Ok(space.get_or_make(key, flags, &creds, make, more)? as u64)
    }

    /// semop(2) and semtimedop(2) of operations already copied in: all or
    /// none, sleeping while one cannot be done unless its IPC_NOWAIT is set.
    pub fn semop(&self, t: &CurrentTask, id: i32, ops: &[SemBuf], deadline: Option<Instant>) -> SysResult<u64> {
        let creds = t.creds();
        let (pid, tid) = (t.pid(), t.task.tid());
        let max = ops.iter().map(|o| o.num).max().unwrap_or(0) as usize;
        let alter = ops.iter().any(|o| o.op != 0);
        let serial = {
            let s = self.sems.lock().unwrap();
            let o = s.space.get(id)?;
            if max >= o.body.sems.len() {
                return Err(errno!(EFBIG));
            }
            o.perm.check(&creds, if alter { 0o222 } else { 0o444 })?;
            o.serial
        };
        let attempt = || -> SysResult<Try<u64>> {
            let mut s = self.sems.lock().unwrap();
            let Sems { space, undo, .. } = &mut *s;
            let set = &mut space.still(id, serial)?.body;
            set.sleepers.retain(|w| w.0 != tid);
            let adj = undo.entry(pid).or_default();
            // The operations in order on a scratch copy of what they touch.
            let mut vals: Vec<(u16, i32)> = Vec::new();
            let mut adjs: Vec<(u16, i32)> = Vec::new();
            for op in ops {
                let cur = match vals.iter().find(|v| v.0 == op.num) {
                    Some(v) => v.1,
                    None => set.sems[op.num as usize].val,
                };
                let next = cur + i32::from(op.op);
                if (op.op == 0 && cur != 0) || next < 0 {
                    if op.flg & IPC_NOWAIT as i16 != 0 {
                        return Err(errno!(EAGAIN));
                    }
                    set.sleepers.push((tid, op.num, op.op == 0));
                    return Ok(Try::Wait);
                }
                if next > SEMVMX {
                    return Err(errno!(ERANGE));
                }
                if op.flg & SEM_UNDO != 0 {
                    let a = match adjs.iter().find(|v| v.0 == op.num) {
                        Some(v) => v.1,
                        None => adj.get(&(id, op.num)).copied().unwrap_or(0),
                    };
                    let a = a - i32::from(op.op);
                    if !(-SEMVMX - 1..=SEMVMX).contains(&a) {
                        return Err(errno!(ERANGE));
                    }
                    match adjs.iter_mut().find(|v| v.0 == op.num) {
                        Some(v) => v.1 = a,
                        None => adjs.push((op.num, a)),
                    }
                }
                match vals.iter_mut().find(|v| v.0 == op.num) {
                    Some(v) => v.1 = next,
                    None => vals.push((op.num, next)),
                }
            }
            for op in ops {
                set.sems[op.num as usize].pid = pid;
            }
            for (num, v) in vals {
                set.sems[num as usize].val = v;
            }
            for (num, a) in adjs {
                if a == 0 {
                    adj.remove(&(id, num));
                } else {
                    adj.insert((id, num), a);
                }
            }
            set.otime = now();
            self.sem_wait.notify_all();
            Ok(Try::Done(0))
        };
        let r = match attempt() {
            Ok(Try::Wait) => sleep_until(t, &self.sem_wait, deadline, errno!(EINTR), attempt),
            Ok(Try::Done(v)) => Ok(v),
            Err(e) => Err(e),
        };
        let mut s = self.sems.lock().unwrap();
        if let Ok(o) = s.space.still(id, serial) {
            o.body.sleepers.retain(|w| w.0 != tid);
        }
        s.undo.retain(|_, adj| !adj.is_empty());
        r
    }

    /// semctl(2) but for the commands that move arrays and structs: GETVAL,
    /// SETVAL, GETPID, GETNCNT, GETZCNT and IPC_RMID; `arg` is the union's value.
    pub fn semctl(&self, t: &CurrentTask, id: i32, num: i32, cmd: i32, arg: u64) -> SysResult<u64> {
        let creds = t.creds();
        let mut s = self.sems.lock().unwrap();
        match cmd {
            SETVAL => {
                let val = arg as i32;
                if !(0..=SEMVMX).contains(&val) {
                    return Err(errno!(ERANGE));
                }
                let o = s.space.get_mut(id)?;
                if num < 0 || num as usize >= o.body.sems.len() {
                    return Err(errno!(EINVAL));
                }
                o.perm.check(&creds, 0o222)?;
                o.body.sems[num as usize] = Sem { val, pid: t.pid() };
                o.body.ctime = now();
                s.forget_undo(id, Some(num as u16));
                self.sem_wait.notify_all();
                Ok(0)
            }
            GETVAL | GETPID | GETNCNT | GETZCNT => {
                let o = s.space.get(id)?;
                o.perm.check(&creds, 0o444)?;
                let sems = &o.body.sems;
                if num < 0 || num as usize >= sems.len() {
                    return Err(errno!(EINVAL));
                }
                let count = |zero: bool| o.body.sleepers.iter().filter(|w| w.1 as i32 == num && w.2 == zero).count();
                Ok(match cmd {
                    GETVAL => sems[num as usize].val as u64,
                    GETPID => sems[num as usize].pid as u64,
                    GETNCNT => count(false) as u64,
                    _ => count(true) as u64,
                })
            }
            IPC_RMID => {
                s.space.get(id)?.perm.check_owner(&creds)?;
                let o = s.space.objs.remove(&id.rem_euclid(IPCMNI)).unwrap_or_else(|| unreachable!("found above"));
                s.used -= o.body.sems.len();
                s.forget_undo(id, None);
                self.sem_wait.notify_all();
                Ok(0)
            }
            _ => Err(errno!(EINVAL)),
        }
    }

    /// GETALL: the set's values, after the read permission check.
    pub fn sem_getall(&self, t: &CurrentTask, id: i32) -> SysResult<Vec<u16>> {
        let s = self.sems.lock().unwrap();
        let o = s.space.get(id)?;
        o.perm.check(&t.creds(), 0o444)?;
        Ok(o.body.sems.iter().map(|s| s.val as u16).collect())
    }

    /// How many semaphores set `id` has, after the permission check `flag`
    /// (SETALL reads that many values from the app before [`Sysv::sem_setall`]).
    pub fn sem_count(&self, t: &CurrentTask, id: i32, flag: i32) -> SysResult<usize> {
        let s = self.sems.lock().unwrap();
        let o = s.space.get(id)?;
        o.perm.check(&t.creds(), flag)?;
        Ok(o.body.sems.len())
    }

    /// SETALL: every value at once; each must be at most SEMVMX.
    pub fn sem_setall(&self, t: &CurrentTask, id: i32, vals: &[u16]) -> SysResult<u64> {
        if vals.iter().any(|v| i32::from(*v) > SEMVMX) {
            return Err(errno!(ERANGE));
        }
        let mut s = self.sems.lock().unwrap();
        let o = s.space.get_mut(id)?;
        o.perm.check(&t.creds(), 0o222)?;
        if vals.len() != o.body.sems.len() {
            return Err(errno!(EIDRM));
        }
        for (sem, v) in o.body.sems.iter_mut().zip(vals) {
            *sem = Sem { val: i32::from(*v), pid: t.pid() };
        }
        o.body.ctime = now();
        s.forget_undo(id, None);
        self.sem_wait.notify_all();
        Ok(0)
    }

    /// IPC_STAT, SEM_STAT and SEM_STAT_ANY: the `semid64_ds` (104 bytes) and what the call returns.
    pub fn sem_stat(&self, t: &CurrentTask, id: i32, cmd: i32) -> SysResult<(u64, Vec<u8>)> {
        let s = self.sems.lock().unwrap();
        let (ret, o) = if cmd == IPC_STAT { (0, s.space.get(id)?) } else { s.space.by_index(id)? };
        if cmd != SEM_STAT_ANY {
            o.perm.check(&t.creds(), 0o444)?;
        }
        let mut out = Vec::with_capacity(104);
        o.perm.encode(&mut out);
        put_u64s(&mut out, &[o.body.otime as u64, 0, o.body.ctime as u64, 0, o.body.sems.len() as u64, 0, 0]);
        Ok((ret as u64, out))
    }

    /// IPC_SET for a semaphore set, from the app's `semid64_ds`.
    pub fn sem_set(&self, t: &CurrentTask, id: i32, ds: &[u8]) -> SysResult<u64> {
        let mut s = self.sems.lock().unwrap();
        let o = s.space.set_perm(id, &t.creds(), &PermSet::decode(ds))?;
        o.body.ctime = now();
        Ok(0)
    }

    /// IPC_INFO and SEM_INFO: the `seminfo` (ten ints) and the highest index in use.
    pub fn sem_info(&self, cmd: i32) -> (u64, Vec<u8>) {
        let s = self.sems.lock().unwrap();
        let limit = SEMMNS as i32;
        let (usz, aem) = if cmd == SEM_INFO { (s.space.objs.len() as i32, s.used as i32) } else { (20, SEMVMX) };
        let info = [limit, SEMMNI as i32, limit, limit, SEMMSL as i32, SEMOPM as i32, SEMOPM as i32, usz, SEMVMX, aem];
        (s.space.max_idx(), info.iter().flat_map(|v| v.to_ne_bytes()).collect())
    }

    /// A process's end: its SEM_UNDO adjustments are applied, each value
    /// kept within 0..=SEMVMX, as Linux's exit_sem does.
    pub fn exit_process(&self, pid: i32) {
        let mut s = self.sems.lock().unwrap();
        let Some(adj) = s.undo.remove(&pid) else {
            return;
        };
        for ((id, num), a) in adj {
            if let Ok(o) = s.space.get_mut(id) {
                if let Some(sem) = o.body.sems.get_mut(num as usize) {
                    *sem = Sem { val: (sem.val + a).clamp(0, SEMVMX), pid };
                }
            }
        }
        self.sem_wait.notify_all();
    }
}

/// The index of the message msgrcv takes, as Linux's find_msg chooses it:
/// the first (any type, `msgtyp`, not `msgtyp` with MSG_EXCEPT), the first of
/// the lowest type up to −`msgtyp`, or the `msgtyp`-th with MSG_COPY.
fn find_msg(msgs: &VecDeque<Message>, msgtyp: i64, flags: i32) -> Option<usize> {
    if flags & MSG_COPY != 0 {
        return usize::try_from(msgtyp).ok().filter(|n| *n < msgs.len());
    }
    if msgtyp < 0 {
        let bound = msgtyp.checked_neg().unwrap_or(i64::MAX);
        let mut best: Option<usize> = None;
        for (i, m) in msgs.iter().enumerate() {
            if m.mtype <= bound && best.is_none_or(|b| m.mtype < msgs[b].mtype) {
                best = Some(i);
            }
        }
        return best;
    }
    msgs.iter().position(|m| msgtyp == 0 || (m.mtype == msgtyp) != (flags & MSG_EXCEPT != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(mtype: i64) -> Message {
        Message { mtype, text: Vec::new() }
    }

    #[test]
    fn find_msg_picks_as_linux() {
        let q: VecDeque<Message> = [3, 1, 2, 1].into_iter().map(msg).collect();
        assert_eq!(find_msg(&q, 0, 0), Some(0));
        assert_eq!(find_msg(&q, 2, 0), Some(2));
        assert_eq!(find_msg(&q, 3, MSG_EXCEPT), Some(1));
        assert_eq!(find_msg(&q, -2, 0), Some(1), "lowest type first, first of equals");
        assert_eq!(find_msg(&q, i64::MIN, 0), Some(1));
        assert_eq!(find_msg(&q, 3, MSG_COPY), Some(3));
        assert_eq!(find_msg(&q, 4, MSG_COPY), None);
        assert_eq!(find_msg(&q, 5, 0), None);
    }

    #[test]
    fn ids_cycle_and_bump_the_sequence() {
        let creds = Creds::default();
        let mut s: Space<()> = Space::new(4);
        assert_eq!(s.add(0, 0o600, &creds, ()).unwrap(), 0);
        assert_eq!(s.add(0, 0o600, &creds, ()).unwrap(), 1);
        s.objs.remove(&0);
        assert_eq!(s.add(0, 0o600, &creds, ()).unwrap(), 2);
        assert_eq!(s.get(1).unwrap().perm.seq, 0);
        assert!(s.get(1 + IPCMNI).is_err(), "a stale sequence is not the object");
        assert!(s.get(-1).is_err());
    }

    #[test]
    fn perms_follow_owner_group_other() {
        let mut creds = Creds { euid: 1000, egid: 1000, ..Creds::default() };
        creds.caps.effective = 0;
        let p = Perm { key: 1, uid: 0, gid: 1000, cuid: 0, cgid: 0, mode: 0o640, seq: 0 };
        assert!(p.allows(&creds, 0o444));
        assert!(!p.allows(&creds, 0o222));
        creds.egid = 5;
        assert!(!p.allows(&creds, 0o444));
        creds.caps.effective = crate::auth::capability::bit(CAP_IPC_OWNER);
        assert!(p.allows(&creds, 0o666));
    }
}
