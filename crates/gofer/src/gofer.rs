//! The Gofer's 9P handler: a fid table of confined host `O_PATH` fds and the
//! file operations the Sentry asks for, each checked against the rules below.
//!
//! Rules: nodes are reached only by `hostfs::walk_one`; only regular files
//! and directories are opened; a regular file is re-opened by its name in its
//! parent and used (even truncated) only if it is still the same inode;
//! mode, owner and times are changed through the fid's own fd, never
//! through a name, which another host process (a second Gofer serving the
//! same directory) can swap for a symlink between a check and the call;
//! every change to the host is refused with EROFS when serving read-only;
//! no mode the client asks for gains set-ID bits unless allowed. A donated
//! fd (moat's Tdonate) is opened exactly as Tlopen opens a regular file, and
//! only for one.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use abi::Errno;
use p9::wire::{
    Data, Rattach, Rclunk, Rdonate, Rfsync, Rgetlock, Rlcreate, Rlink, Rlock, Rlopen, Rmkdir, Rmknod, Rread, Rreaddir,
    Rreadlink, Rremove, Rrename, Rrenameat, Rsetattr, Rstatfs, Rsymlink, Runlinkat, Rwalk, Rwrite, Tattach, Tclunk,
    Tdonate, Tfsync, Tgetattr, Tgetlock, Tlcreate, Tlink, Tlock, Tlopen, Tmkdir, Tmknod, Tread, Treaddir, Treadlink,
    Tremove, Trename, Trenameat, Tsetattr, Tstatfs, Tsymlink, Tunlinkat, Twalk, Twrite,
};
use p9::{setattr, Attr, DirEntry, Fid, Handler, Qid, AT_REMOVEDIR};
use rustix::fs::{AtFlags, Mode, OFlags, SeekFrom, Timespec, Timestamps};

use crate::fids::{Cost, Fids};
use crate::hostfs::{self, check_name, errno, io_errno, Kind};
use crate::Config;

/// Open flags a client may pass through to the host; anything else
/// (`O_CREAT`, `O_PATH`, `O_TMPFILE`, `O_DIRECTORY`, ...) is dropped.
const CLIENT_OPEN_FLAGS: OFlags = OFlags::ACCMODE
    .union(OFlags::TRUNC)
    .union(OFlags::APPEND)
    .union(OFlags::NONBLOCK)
    .union(OFlags::DSYNC)
    .union(OFlags::SYNC)
    .union(OFlags::DIRECT)
    .union(OFlags::LARGEFILE)
    .union(OFlags::NOATIME);

/// Mode bits a client may set: permissions, setuid/setgid and sticky.
const PERMISSION_BITS: u32 = 0o7777;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;

/// What a fid costs besides its name and fds: its entry in the fid table
/// and in the 9P server's own set, each twice over, as a hash table grows
/// by doubling.
const FID_BYTES: usize = 2 * (std::mem::size_of::<(Fid, FidState)>() + std::mem::size_of::<Fid>() + 2);
/// What an fd a fid holds costs: the kernel's `struct file` (a 256-byte
/// slab object), its slot in the fd table, and the `Arc` around it. An fd
/// shared by several fids is charged to each: an over-estimate that keeps
/// the sum simple.
const FD_BYTES: usize = 256 + 8 + 32;

/// Big enough for any single `linux_dirent64` (name up to 255 bytes).
const GETDENTS_BUFFER: usize = 8192;

/// Where a node was found: its directory and its name there.
#[derive(Debug, Clone)]
struct Parent {
    dir: Arc<OwnedFd>,
    /// The directory's inode, to find nodes affected by a rename.
    dir_ino: u64,
    name: Vec<u8>,
}

/// A host file reached by walking from the root.
#[derive(Debug, Clone)]
struct Node {
    /// `O_PATH | O_NOFOLLOW` fd for the file itself.
    fd: Arc<OwnedFd>,
    /// `None` for the root.
    parent: Option<Parent>,
    kind: Kind,
    dev: u64,
    ino: u64,
}

#[derive(Debug)]
enum Open {
    File(OwnedFd),
    Directory(OwnedFd),
}

#[derive(Debug)]
struct FidState {
    node: Node,
    open: Option<Open>,
}

impl FidState {
    /// What a fid bound to a node named `name` (none for the root) costs,
    /// holding `fds` fds.
    fn cost_of(name: Option<&[u8]>, fds: usize) -> usize {
        FID_BYTES + name.map_or(0, <[u8]>::len) + fds * FD_BYTES
    }
}

impl Cost for FidState {
    fn cost(&self) -> usize {
        let name = self.node.parent.as_ref().map(|p| &p.name[..]);
        let fds = 1 + usize::from(self.node.parent.is_some()) + usize::from(self.open.is_some());
        FidState::cost_of(name, fds)
    }
}

/// The Gofer's `p9::Handler`: one per 9P connection.
#[derive(Debug)]
pub struct Gofer {
    root: Node,
    read_only: bool,
    /// Serving one file of the root directory (a bind mount of a file):
    /// only this name may be walked to, and the directory itself can be
    /// neither listed nor changed.
    only: Option<Vec<u8>>,
    allow_setid: bool,
    fids: Fids<FidState>,
}

impl Gofer {
    /// A handler serving the tree under `root`, an `O_PATH | O_DIRECTORY`
    /// fd, as `config` says.
    pub fn new(root: OwnedFd, config: &Config) -> Result<Gofer, Errno> {
        if let Some(name) = &config.only {
            check_name(name)?;
        }
        let stx = hostfs::stat(&root)?;
        let (dev, ino) = hostfs::identity(&stx);
        let root = Node { fd: Arc::new(root), parent: None, kind: Kind::Directory, dev, ino };
        Ok(Gofer {
            root,
            read_only: config.read_only,
            only: config.only.clone(),
            allow_setid: config.allow_setid,
            fids: Fids::new(config.limits),
        })
    }

    /// Whether `node` is the root of a Gofer that serves one file of it:
    /// then the directory is off limits.
    fn hidden_root(&self, node: &Node) -> bool {
        self.only.is_some() && node.parent.is_none()
    }

    fn fid(&self, fid: Fid) -> Result<&FidState, Errno> {
        self.fids.get(fid)
    }

    /// The entry naming `node` in its parent, for a request that removes or
    /// moves it: checked to still name the same inode. The one file a
    /// Gofer serves of a hidden directory is, in the sandbox, the mount
    /// point of a bind mount, which Linux neither unlinks nor renames
    /// (EBUSY); the root is a mount point too.
    ///
    /// The unlink or rename that follows must go by name, and no symlink is
    /// followed there: should another process swap the name meanwhile, it
    /// acts on another entry of the same directory, one the client may
    /// change anyway (never one of a hidden directory).
    fn movable_entry<'n>(&self, node: &'n Node) -> Result<&'n Parent, Errno> {
        let parent = node.parent.as_ref().ok_or(Errno::EBUSY)?;
        if self.only.is_some() && parent.dir_ino == self.root.ino {
            return Err(Errno::EBUSY);
        }
        current_parent(node)
    }

    /// The mode to give a `kind` of file when the client asks for `mode`:
    /// its permission bits, less the set-ID bits unless they are allowed.
    /// S_ISGID stays on a directory, where it runs nothing as anyone: files
    /// made in it only take its group.
    fn mode_for(&self, kind: Kind, mode: u32) -> Mode {
        let mut mode = mode & PERMISSION_BITS;
        if !self.allow_setid {
            mode &= !S_ISUID;
            if kind != Kind::Directory {
                mode &= !S_ISGID;
            }
        }
        Mode::from_raw_mode(mode)
    }

    /// The node of `fid`, which must be a directory the client may change.
    fn dir(&self, fid: Fid) -> Result<Node, Errno> {
        let node = &self.fid(fid)?.node;
        if node.kind != Kind::Directory {
            return Err(Errno::ENOTDIR);
        }
        if self.hidden_root(node) {
            return Err(Errno::EACCES);
        }
        Ok(node.clone())
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    /// Rewrites the (directory, name) of every node that a rename moved.
    fn renamed(&mut self, from_dir_ino: u64, from_name: &[u8], to: &Node, to_name: &[u8]) {
        self.fids.update_all(|state| {
            if let Some(parent) = &mut state.node.parent {
                if parent.dir_ino == from_dir_ino && parent.name == from_name {
                    *parent = Parent { dir: to.fd.clone(), dir_ino: to.ino, name: to_name.to_vec() };
                }
            }
        });
    }
}

/// The parent entry of `node`, checked to still name the same inode; the
/// root has none (EBUSY, as for any mount point).
fn current_parent(node: &Node) -> Result<&Parent, Errno> {
    let parent = node.parent.as_ref().ok_or(Errno::EBUSY)?;
    let stx = hostfs::stat_at(&parent.dir, &parent.name)?;
    if hostfs::identity(&stx) != (node.dev, node.ino) {
        return Err(Errno::ESTALE);
    }
    Ok(parent)
}

/// Opens a regular file for I/O by its name in its parent, with `flags`
/// (already filtered). Fails unless the result is the same regular file.
fn reopen_file(node: &Node, flags: OFlags) -> Result<OwnedFd, Errno> {
    let parent = node.parent.as_ref().ok_or(Errno::EPERM)?;
    // O_NONBLOCK keeps a FIFO swapped in under our name from blocking us;
    // the inode check below then refuses it. O_TRUNC waits for that check,
    // lest it truncate whatever was swapped in.
    let open_flags = (flags - OFlags::TRUNC) | OFlags::NOCTTY | OFlags::NONBLOCK;
    let fd = hostfs::open_beneath(&parent.dir, &parent.name, open_flags, Mode::empty())?;
    check_same_regular(&fd, node.dev, node.ino)?;
    if flags.contains(OFlags::TRUNC) {
        // Linux lets O_RDONLY | O_TRUNC truncate; an fd that cannot write
        // cannot, so that takes one that can.
        if (flags & OFlags::ACCMODE).is_empty() {
            rustix::fs::ftruncate(reopen_file(node, OFlags::WRONLY)?, 0).map_err(errno)?;
        } else {
            rustix::fs::ftruncate(&fd, 0).map_err(errno)?;
        }
    }
    if !flags.contains(OFlags::NONBLOCK) {
        let status = rustix::fs::fcntl_getfl(&fd).map_err(errno)?;
        rustix::fs::fcntl_setfl(&fd, status - OFlags::NONBLOCK).map_err(errno)?;
    }
    Ok(fd)
}

fn check_same_regular(fd: &OwnedFd, dev: u64, ino: u64) -> Result<(), Errno> {
    let stx = hostfs::stat(fd)?;
    if Kind::of(&stx) != Kind::Regular {
        return Err(Errno::EPERM);
    }
    if hostfs::identity(&stx) != (dev, ino) {
        return Err(Errno::ESTALE);
    }
    Ok(())
}

fn client_flags(flags: u32) -> OFlags {
    OFlags::from_bits_retain(flags) & CLIENT_OPEN_FLAGS
}

fn writes(flags: OFlags) -> bool {
    !(flags & OFlags::ACCMODE).is_empty() || flags.contains(OFlags::TRUNC)
}

/// The Rgetattr-style qid of `name` in `dir`, after creating it.
fn qid_at(dir: &Node, name: &[u8]) -> Result<Qid, Errno> {
    Ok(hostfs::qid(&hostfs::stat_at(&dir.fd, name)?))
}

fn timespec(set: bool, now: bool, sec: u64, nsec: u64) -> Timespec {
    let tv_nsec = match (set, now) {
        (false, _) => rustix::fs::UTIME_OMIT,
        (true, true) => rustix::fs::UTIME_NOW,
        (true, false) => nsec as _,
    };
    Timespec { tv_sec: sec as i64, tv_nsec }
}

fn dirent_type(file_type: rustix::fs::FileType) -> (u8, u8) {
    use rustix::fs::FileType as T;
    // (d_type, qid type)
    match file_type {
        T::Directory => (4, p9::QID_TYPE_DIR),
        T::Symlink => (10, p9::QID_TYPE_SYMLINK),
        T::RegularFile => (8, p9::QID_TYPE_FILE),
        T::Fifo => (1, p9::QID_TYPE_FILE),
        T::CharacterDevice => (2, p9::QID_TYPE_FILE),
        T::BlockDevice => (6, p9::QID_TYPE_FILE),
        T::Socket => (12, p9::QID_TYPE_FILE),
        T::Unknown => (0, p9::QID_TYPE_FILE),
    }
}

impl Handler for Gofer {
    /// Every tree name attaches to the one root this Gofer serves.
    fn attach(&mut self, t: Tattach) -> Result<Rattach, Errno> {
        let qid = hostfs::qid(&hostfs::stat(&self.root.fd)?);
        self.fids.insert(t.fid, FidState { node: self.root.clone(), open: None })?;
        Ok(Rattach { qid })
    }

    fn walk(&mut self, t: Twalk) -> Result<Rwalk, Errno> {
        let mut node = self.fid(t.fid)?.node.clone();
        let mut qids = Vec::with_capacity(t.names.len());
        let only = self.only.clone();
        for name in t.names {
            let mut step = || -> Result<Node, Errno> {
                check_name(&name)?;
                if node.kind != Kind::Directory {
                    return Err(Errno::ENOTDIR);
                }
                if node.parent.is_none() && only.as_ref().is_some_and(|only| *only != name) {
                    return Err(Errno::ENOENT);
                }
                let fd = hostfs::walk_one(&node.fd, &name)?;
                let stx = hostfs::stat(&fd)?;
                qids.push(hostfs::qid(&stx));
                let (dev, ino) = hostfs::identity(&stx);
                let parent = Parent { dir: node.fd.clone(), dir_ino: node.ino, name: name.clone() };
                Ok(Node { fd: Arc::new(fd), parent: Some(parent), kind: Kind::of(&stx), dev, ino })
            };
            match step() {
                Ok(next) => node = next,
                Err(e) if qids.is_empty() => return Err(e),
                Err(_) => return Ok(Rwalk { qids }),
            }
        }
        // A partial walk binds nothing, so only a whole one is charged.
        self.fids.insert(t.newfid, FidState { node, open: None })?;
        Ok(Rwalk { qids })
    }

    fn clunk(&mut self, t: Tclunk) -> Result<Rclunk, Errno> {
        self.fids.remove(t.fid).ok_or(Errno::EBADF)?;
        Ok(Rclunk {})
    }

    fn getattr(&mut self, t: Tgetattr) -> Result<Attr, Errno> {
        let stx = hostfs::stat(&self.fid(t.fid)?.node.fd)?;
        Ok(hostfs::attr(&stx, t.request_mask))
    }

    fn lopen(&mut self, t: Tlopen) -> Result<Rlopen, Errno> {
        let read_only = self.read_only;
        let serves_one_file = self.only.is_some();
        // The open fd is charged before it is opened, as Linux finds a
        // file table slot before it opens.
        self.fids.grow(t.fid, FD_BYTES, |state| {
            if state.open.is_some() {
                return Err(Errno::EINVAL);
            }
            let flags = client_flags(t.flags);
            let open = match state.node.kind {
                _ if serves_one_file && state.node.parent.is_none() => return Err(Errno::EACCES),
                Kind::Symlink => return Err(Errno::ELOOP),
                Kind::Special => return Err(Errno::EPERM),
                Kind::Directory if writes(flags) => return Err(Errno::EISDIR),
                Kind::Directory => Open::Directory(hostfs::open_dir(&state.node.fd)?),
                Kind::Regular if read_only && writes(flags) => return Err(Errno::EROFS),
                Kind::Regular => Open::File(reopen_file(&state.node, flags)?),
            };
            let qid = hostfs::qid(&hostfs::stat(&state.node.fd)?);
            state.open = Some(open);
            Ok(Rlopen { qid, iounit: 0 })
        })
    }

    /// Opens the regular file behind `t.fid` as Tlopen would, and hands the
    /// fd to the Sentry. Unlike Tlopen the fid stays unopened, and nothing
    /// else is ever donated: a directory fd would let the Sentry walk the
    /// host tree without these checks.
    fn donate(&mut self, t: Tdonate) -> Result<(Rdonate, OwnedFd), Errno> {
        let node = &self.fid(t.fid)?.node;
        let flags = client_flags(t.flags);
        match node.kind {
            Kind::Symlink => return Err(Errno::ELOOP),
            Kind::Special => return Err(Errno::EPERM),
            Kind::Directory => return Err(Errno::EISDIR),
            Kind::Regular if self.read_only && writes(flags) => return Err(Errno::EROFS),
            Kind::Regular => {}
        }
        // open_beneath sets O_CLOEXEC too; it is spelled out because here it
        // matters most: the fd goes to the Sentry, which must not leak it on.
        let fd = reopen_file(node, flags | OFlags::CLOEXEC)?;
        let qid = hostfs::qid(&hostfs::stat(&fd)?);
        Ok((Rdonate { qid }, fd))
    }

    fn lcreate(&mut self, t: Tlcreate) -> Result<Rlcreate, Errno> {
        self.writable()?;
        check_name(&t.name)?;
        let dir = self.dir(t.fid)?;
        if self.fid(t.fid)?.open.is_some() {
            return Err(Errno::EINVAL);
        }
        // The fid becomes the new file, holding its fd, its directory's
        // and the open one: refused before anything is created.
        self.fids.check(t.fid, FidState::cost_of(Some(&t.name), 3))?;
        let excl = OFlags::from_bits_retain(t.flags) & OFlags::EXCL;
        let flags = client_flags(t.flags) | excl | OFlags::CREATE | OFlags::NOCTTY;
        let mode = self.mode_for(Kind::Regular, t.mode);
        let file = hostfs::open_beneath(&dir.fd, &t.name, flags | OFlags::NONBLOCK, mode)?;
        let path = hostfs::walk_one(&dir.fd, &t.name)?;
        let stx = hostfs::stat(&path)?;
        let (dev, ino) = hostfs::identity(&stx);
        check_same_regular(&file, dev, ino)?;
        if !flags.contains(OFlags::NONBLOCK) {
            let status = rustix::fs::fcntl_getfl(&file).map_err(errno)?;
            rustix::fs::fcntl_setfl(&file, status - OFlags::NONBLOCK).map_err(errno)?;
        }
        let parent = Parent { dir: dir.fd.clone(), dir_ino: dir.ino, name: t.name };
        let node = Node { fd: Arc::new(path), parent: Some(parent), kind: Kind::Regular, dev, ino };
        self.fids.insert(t.fid, FidState { node, open: Some(Open::File(file)) })?;
        Ok(Rlcreate { qid: hostfs::qid(&stx), iounit: 0 })
    }

    fn read(&mut self, t: Tread) -> Result<Rread, Errno> {
        match &self.fid(t.fid)?.open {
            Some(Open::File(fd)) => {
                // The server capped `count` to fit the negotiated msize.
                let mut buf = vec![0u8; t.count as usize];
                let n = rustix::io::pread(fd, &mut buf, t.offset).map_err(errno)?;
                buf.truncate(n);
                Ok(Rread { data: Data(buf) })
            }
            Some(Open::Directory(_)) => Err(Errno::EISDIR),
            None => Err(Errno::EBADF),
        }
    }

    fn write(&mut self, t: Twrite) -> Result<Rwrite, Errno> {
        self.writable()?;
        match &self.fid(t.fid)?.open {
            Some(Open::File(fd)) => {
                let n = rustix::io::pwrite(fd, &t.data.0, t.offset).map_err(errno)?;
                Ok(Rwrite { count: n as u32 })
            }
            Some(Open::Directory(_)) => Err(Errno::EISDIR),
            None => Err(Errno::EBADF),
        }
    }

    /// Offsets are the host's own `d_off` cookies, so they stay valid across
    /// calls. `.` and `..` are left out: the client makes its own.
    fn readdir(&mut self, t: Treaddir) -> Result<Rreaddir, Errno> {
        let Some(Open::Directory(fd)) = &self.fid(t.fid)?.open else {
            return Err(Errno::EBADF);
        };
        rustix::fs::seek(fd, SeekFrom::Start(t.offset)).map_err(errno)?;
        let mut buf = Vec::with_capacity(GETDENTS_BUFFER);
        let mut dir = rustix::fs::RawDir::new(fd, buf.spare_capacity_mut());
        let mut entries = Vec::new();
        let mut used = 0;
        while let Some(entry) = dir.next() {
            let entry = entry.map_err(errno)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let (dtype, qid_type) = dirent_type(entry.file_type());
            let entry = DirEntry {
                qid: Qid { ty: qid_type, version: 0, path: entry.ino() },
                offset: entry.next_entry_cookie(),
                dtype,
                name: name.to_vec(),
            };
            used += entry.encoded_len();
            if used > t.count as usize {
                break;
            }
            entries.push(entry);
        }
        Ok(Rreaddir { entries })
    }

    fn readlink(&mut self, t: Treadlink) -> Result<Rreadlink, Errno> {
        let node = &self.fid(t.fid)?.node;
        if node.kind != Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        let target = rustix::fs::readlinkat(&*node.fd, "", Vec::new()).map_err(errno)?;
        Ok(Rreadlink { target: target.into_bytes() })
    }

    fn statfs(&mut self, t: Tstatfs) -> Result<Rstatfs, Errno> {
        let s = rustix::fs::fstatfs(&*self.fid(t.fid)?.node.fd).map_err(errno)?;
        let [lo, hi] = s.f_fsid.val;
        Ok(Rstatfs {
            fs_type: s.f_type as u32,
            bsize: s.f_bsize as u32,
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            fsid: u64::from(lo as u32) | (u64::from(hi as u32) << 32),
            namelen: s.f_namelen as u32,
        })
    }

    fn fsync(&mut self, t: Tfsync) -> Result<Rfsync, Errno> {
        let fd = match &self.fid(t.fid)?.open {
            Some(Open::File(fd) | Open::Directory(fd)) => fd,
            None => return Err(Errno::EBADF),
        };
        if t.datasync != 0 {
            rustix::fs::fdatasync(fd).map_err(errno)?;
        } else {
            rustix::fs::fsync(fd).map_err(errno)?;
        }
        Ok(Rfsync {})
    }

    fn setattr(&mut self, t: Tsetattr) -> Result<Rsetattr, Errno> {
        self.writable()?;
        let state = self.fid(t.fid)?;
        let node = &state.node;
        if self.hidden_root(node) {
            return Err(Errno::EACCES);
        }
        let a = &t.attr;
        // Every change acts on the node's own O_PATH fd, never on its name:
        // another process serving the same host directory (a second Gofer
        // of overlapping volumes) may swap the name for a symlink at any time.
        if a.valid & setattr::MODE != 0 {
            if node.kind == Kind::Symlink {
                // Linux has no symlink permissions to change.
                return Err(Errno::EOPNOTSUPP);
            }
            let mode = self.mode_for(node.kind, a.mode);
            host::sys::chmod_fd(node.fd.as_fd(), mode.as_raw_mode()).map_err(io_errno)?;
        }
        if a.valid & (setattr::UID | setattr::GID) != 0 {
            // Linux clears a non-directory's set-ID bits on chown, whoever
            // asks, so no set-ID file changes hands.
            // rustix cannot build raw ids without an unchecked constructor; nix can.
            use nix::unistd::{Gid, Uid};
            let uid = (a.valid & setattr::UID != 0).then(|| Uid::from_raw(a.uid));
            let gid = (a.valid & setattr::GID != 0).then(|| Gid::from_raw(a.gid));
            let flags = nix::fcntl::AtFlags::AT_EMPTY_PATH | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
            nix::unistd::fchownat(Some(node.fd.as_raw_fd()), "", uid, gid, flags).map_err(|e| Errno(e as i32))?;
        }
        if a.valid & setattr::SIZE != 0 {
            match node.kind {
                Kind::Directory => return Err(Errno::EISDIR),
                Kind::Regular => {}
                Kind::Symlink | Kind::Special => return Err(Errno::EINVAL),
            }
            // Prefer the fid's own open file: it may be writable where a
            // fresh open would not be (a file created read-only). A fresh
            // open goes by name, but stays beneath the tree and must reach
            // this very inode, or nothing is truncated.
            let truncated = match &state.open {
                Some(Open::File(fd)) => rustix::fs::ftruncate(fd, a.size).is_ok(),
                _ => false,
            };
            if !truncated {
                let fd = reopen_file(node, OFlags::WRONLY)?;
                rustix::fs::ftruncate(&fd, a.size).map_err(errno)?;
            }
        }
        if a.valid & (setattr::ATIME | setattr::MTIME) != 0 {
            let times = Timestamps {
                last_access: timespec(
                    a.valid & setattr::ATIME != 0,
                    a.valid & setattr::ATIME_SET == 0,
                    a.atime_sec,
                    a.atime_nsec,
                ),
                last_modification: timespec(
                    a.valid & setattr::MTIME != 0,
                    a.valid & setattr::MTIME_SET == 0,
                    a.mtime_sec,
                    a.mtime_nsec,
                ),
            };
            let flags = AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW;
            rustix::fs::utimensat(&*node.fd, "", &times, flags).map_err(errno)?;
        }
        Ok(Rsetattr {})
    }

    fn mkdir(&mut self, t: Tmkdir) -> Result<Rmkdir, Errno> {
        self.writable()?;
        check_name(&t.name)?;
        let dir = self.dir(t.dfid)?;
        rustix::fs::mkdirat(&*dir.fd, &t.name, self.mode_for(Kind::Directory, t.mode)).map_err(errno)?;
        Ok(Rmkdir { qid: qid_at(&dir, &t.name)? })
    }

    /// The target is stored verbatim; the Gofer never follows it.
    fn symlink(&mut self, t: Tsymlink) -> Result<Rsymlink, Errno> {
        self.writable()?;
        check_name(&t.name)?;
        let dir = self.dir(t.dfid)?;
        rustix::fs::symlinkat(&t.target, &*dir.fd, &t.name).map_err(errno)?;
        Ok(Rsymlink { qid: qid_at(&dir, &t.name)? })
    }

    /// Only FIFOs: device nodes and sockets are not made on the host.
    fn mknod(&mut self, t: Tmknod) -> Result<Rmknod, Errno> {
        self.writable()?;
        check_name(&t.name)?;
        let dir = self.dir(t.dfid)?;
        let file_type = rustix::fs::FileType::from_raw_mode(t.mode);
        if file_type != rustix::fs::FileType::Fifo {
            return Err(Errno::EPERM);
        }
        rustix::fs::mknodat(&*dir.fd, &t.name, file_type, self.mode_for(Kind::Special, t.mode), 0).map_err(errno)?;
        Ok(Rmknod { qid: qid_at(&dir, &t.name)? })
    }

    fn link(&mut self, t: Tlink) -> Result<Rlink, Errno> {
        self.writable()?;
        check_name(&t.name)?;
        let dir = self.dir(t.dfid)?;
        let target = self.fid(t.fid)?.node.clone();
        if target.kind == Kind::Directory {
            return Err(Errno::EPERM);
        }
        // Linking the O_PATH fd itself needs CAP_DAC_READ_SEARCH on older
        // kernels; fall back to the checked name in the parent (a name
        // swapped meanwhile links another entry of that directory, which
        // the client may link anyway: linkat follows no symlink).
        let direct = rustix::fs::linkat(&*target.fd, "", &*dir.fd, &t.name, AtFlags::EMPTY_PATH);
        if direct.is_err() {
            let parent = current_parent(&target)?;
            rustix::fs::linkat(&parent.dir, &parent.name, &*dir.fd, &t.name, AtFlags::empty()).map_err(errno)?;
        }
        Ok(Rlink {})
    }

    fn renameat(&mut self, t: Trenameat) -> Result<Rrenameat, Errno> {
        self.writable()?;
        check_name(&t.oldname)?;
        check_name(&t.newname)?;
        let from = self.dir(t.olddirfid)?;
        let to = self.dir(t.newdirfid)?;
        rustix::fs::renameat(&*from.fd, &t.oldname, &*to.fd, &t.newname).map_err(errno)?;
        self.renamed(from.ino, &t.oldname, &to, &t.newname);
        Ok(Rrenameat {})
    }

    fn rename(&mut self, t: Trename) -> Result<Rrename, Errno> {
        self.writable()?;
        check_name(&t.name)?;
        let node = self.fid(t.fid)?.node.clone();
        let parent = self.movable_entry(&node)?.clone();
        let to = self.dir(t.dfid)?;
        rustix::fs::renameat(&parent.dir, &parent.name, &*to.fd, &t.name).map_err(errno)?;
        self.renamed(parent.dir_ino, &parent.name, &to, &t.name);
        Ok(Rrename {})
    }

    fn unlinkat(&mut self, t: Tunlinkat) -> Result<Runlinkat, Errno> {
        self.writable()?;
        check_name(&t.name)?;
        if t.flags & !AT_REMOVEDIR != 0 {
            return Err(Errno::EINVAL);
        }
        let dir = self.dir(t.dfid)?;
        let flags = if t.flags & AT_REMOVEDIR != 0 { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        rustix::fs::unlinkat(&*dir.fd, &t.name, flags).map_err(errno)?;
        Ok(Runlinkat {})
    }

    /// The fid is released whatever happens, as 9P requires.
    fn remove(&mut self, t: Tremove) -> Result<Rremove, Errno> {
        let state = self.fids.remove(t.fid).ok_or(Errno::EBADF)?;
        self.writable()?;
        let parent = self.movable_entry(&state.node)?;
        let flags = if state.node.kind == Kind::Directory { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        rustix::fs::unlinkat(&parent.dir, &parent.name, flags).map_err(errno)?;
        Ok(Rremove {})
    }

    /// Locks are the Sentry's business: it keeps POSIX lock state for the
    /// sandbox, so the host is not asked. Always granted.
    fn lock(&mut self, t: Tlock) -> Result<Rlock, Errno> {
        self.fid(t.fid)?;
        Ok(Rlock { status: p9::lock::SUCCESS })
    }

    /// See `lock`: there is never a conflicting host lock to report.
    fn getlock(&mut self, t: Tgetlock) -> Result<Rgetlock, Errno> {
        self.fid(t.fid)?;
        Ok(Rgetlock {
            lock_type: p9::lock::TYPE_UNLCK,
            start: t.start,
            length: t.length,
            proc_id: t.proc_id,
            client_id: t.client_id,
        })
    }
}
