//! devfs: the character devices every program expects in /dev (null, zero,
//! full, random, urandom, tty) and the /proc/self/fd links, made in the Sentry.

use std::any::Any;
use std::sync::Arc;

use super::simple::{next_ino, SimpleDir, SimpleSymlink};
use crate::mm::io::read_through;
use crate::mm::{IoDst, IoSrc};
use crate::vfs::{new_fs_id, FileOps, FileType, Inode, InodeRef, OpenFile, Stat, Timespec};
use crate::SysResult;

/// A device number in Linux's encoding (glibc's `makedev`).
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
}

/// The major number of a device number in Linux's encoding.
pub fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

/// The minor number of a device number in Linux's encoding.
pub fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

/// Which device a `CharDevice` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
}

impl Device {
    fn rdev(self) -> u64 {
        match self {
            Device::Null => makedev(1, 3),
            Device::Zero => makedev(1, 5),
            Device::Full => makedev(1, 7),
            Device::Random => makedev(1, 8),
            Device::Urandom => makedev(1, 9),
        }
    }
}

/// A character device node. `/dev/tty` carries the sandbox's terminal, if it has one.
#[derive(Debug)]
struct CharDevice {
    fs_id: u64,
    ino: u64,
    rdev: u64,
    created: Timespec,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Device(Device),
    Tty(Option<Arc<dyn FileOps>>),
}

impl CharDevice {
    fn new(fs_id: u64, rdev: u64, kind: Kind) -> Arc<CharDevice> {
        Arc::new(CharDevice { fs_id, ino: next_ino(), rdev, created: Timespec::now(), kind })
    }
}

impl Inode for CharDevice {
    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            dev: self.fs_id,
            ino: self.ino,
            mode: FileType::CharDev.mode_bits() | 0o666,
            nlink: 1,
            rdev: self.rdev,
            blksize: 4096,
            atime: self.created,
            mtime: self.created,
            ctime: self.created,
            ..Default::default()
        })
    }

    fn open(self: Arc<Self>, _flags: u32) -> SysResult<Arc<dyn FileOps>> {
        match &self.kind {
            Kind::Device(d) => Ok(Arc::new(DeviceFile(*d))),
            // Linux gives ENXIO for /dev/tty in a process without a controlling terminal.
            Kind::Tty(tty) => tty.clone().ok_or(errno!(ENXIO)),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs_id(&self) -> u64 {
        self.fs_id
    }

    fn enforces_mode_bits(&self) -> bool {
        false
    }
}

/// An open memory-class device. Offsets are ignored, but the file is seekable: lseek
/// on /dev/null or /dev/zero succeeds on Linux, and programs rely on it.
#[derive(Debug)]
struct DeviceFile(Device);

impl FileOps for DeviceFile {
    fn read(&self, _file: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        if matches!(self.0, Device::Null) {
            return Ok(0);
        }
        // Made a piece at a time (zeros: the buffer as it starts): a 2 GiB
        // read costs the Sentry one piece.
        let random = matches!(self.0, Device::Random | Device::Urandom);
        read_through(dst, |_, piece| {
            // Both come from the host's urandom pool: since Linux 5.6 /dev/random no longer
            // blocks once the pool is initialised, which it is by the time a sandbox runs.
            if random {
                host::sys::getrandom(piece).map_err(|_| errno!(EIO))?;
            }
            Ok(piece.len())
        })
    }

    fn write(&self, _file: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        match self.0 {
            Device::Full => Err(errno!(ENOSPC)),
            // Writes to random/urandom add entropy on Linux; the host's pool needs none of ours.
            Device::Null | Device::Zero | Device::Random | Device::Urandom => Ok(src.size()),
        }
    }
}

/// Builds /dev. `tty` is the sandbox's terminal (what /dev/tty opens), if it
/// has one; `ptys` the pseudo-terminal multiplexer and its directory
/// (`ptmx`, `pts`), if the sandbox offers them.
pub fn new_devfs(tty: Option<Arc<dyn FileOps>>, ptys: Option<(InodeRef, InodeRef)>) -> InodeRef {
    let fs = new_fs_id();
    let mut entries: Vec<(Vec<u8>, InodeRef)> = Vec::new();
    let mut add = |name: &str, inode: InodeRef| entries.push((name.as_bytes().to_vec(), inode));
    for (name, d) in [
        ("null", Device::Null),
        ("zero", Device::Zero),
        ("full", Device::Full),
        ("random", Device::Random),
        ("urandom", Device::Urandom),
    ] {
        add(name, CharDevice::new(fs, d.rdev(), Kind::Device(d)));
    }
    add("tty", CharDevice::new(fs, makedev(5, 0), Kind::Tty(tty)));
    add("fd", SimpleSymlink::fixed(fs, next_ino(), b"/proc/self/fd"));
    add("stdin", SimpleSymlink::fixed(fs, next_ino(), b"/proc/self/fd/0"));
    add("stdout", SimpleSymlink::fixed(fs, next_ino(), b"/proc/self/fd/1"));
    add("stderr", SimpleSymlink::fixed(fs, next_ino(), b"/proc/self/fd/2"));
    match ptys {
        Some((ptmx, pts)) => {
            add("ptmx", ptmx);
            add("pts", pts);
        }
        None => add("pts", SimpleDir::fixed(fs, next_ino(), 0o755, Vec::new())),
    }
    // The mountpoint for the tmpfs the kernel mounts at /dev/shm.
    add("shm", SimpleDir::fixed(fs, next_ino(), 0o1777, Vec::new()));
    SimpleDir::fixed(fs, next_ino(), 0o755, entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::NewNode;
    use abi::Errno;

    fn open(dev: &InodeRef, name: &str) -> Arc<OpenFile> {
        let ops = dev.lookup(name.as_bytes()).unwrap().open(2).unwrap();
        OpenFile::new(ops, None, 2)
    }

    #[test]
    fn device_numbers_round_trip() {
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(makedev(136, 0), 0x8800);
        for (ma, mi) in [(1, 3), (5, 0), (259, 70000), (4095, 255), (0xfffff, 0xfffff)] {
            assert_eq!((major(makedev(ma, mi)), minor(makedev(ma, mi))), (ma, mi));
        }
    }

    #[test]
    fn null_zero_full() {
        let dev = new_devfs(None, None);
        let null = open(&dev, "null");
        assert_eq!(null.ops.read(&null, &mut [1u8; 16], 0), Ok(0));
        assert_eq!(null.ops.write(&null, b"hello", 0), Ok(5));
        assert!(null.ops.seekable());

        let zero = open(&dev, "zero");
        let mut buf = [7u8; 32];
        assert_eq!(zero.ops.read(&zero, &mut buf, 12345), Ok(32));
        assert_eq!(buf, [0u8; 32]);
        assert_eq!(zero.ops.write(&zero, b"abc", 0), Ok(3));

        let full = open(&dev, "full");
        let mut buf = [7u8; 8];
        assert_eq!(full.ops.read(&full, &mut buf, 0), Ok(8));
        assert_eq!(buf, [0u8; 8]);
        assert_eq!(full.ops.write(&full, b"abc", 0), Err(errno!(ENOSPC)));
    }

    #[test]
    fn random_fills_the_buffer() {
        let dev = new_devfs(None, None);
        for name in ["random", "urandom"] {
            let f = open(&dev, name);
            let mut buf = [0u8; 64];
            assert_eq!(f.ops.read(&f, &mut buf, 0), Ok(64));
            // 64 zero bytes from a working RNG: probability 2^-512.
            assert_ne!(buf, [0u8; 64]);
            assert_eq!(f.ops.write(&f, b"entropy", 0), Ok(7));
        }
    }

    #[test]
    fn device_stat() {
        let dev = new_devfs(None, None);
        let st = dev.lookup(b"urandom").unwrap().stat().unwrap();
        assert_eq!(st.mode, 0o020666);
        assert_eq!((major(st.rdev), minor(st.rdev)), (1, 9));
        assert_eq!(st.dev, dev.stat().unwrap().dev);
        let tty = dev.lookup(b"tty").unwrap().stat().unwrap();
        assert_eq!((major(tty.rdev), minor(tty.rdev)), (5, 0));
    }

    #[test]
    fn tty_opens_the_given_terminal() {
        let dev = new_devfs(None, None);
        assert_eq!(dev.lookup(b"tty").unwrap().open(2).err().map(|e| e.errno()), Some(Errno::ENXIO));

        #[derive(Debug)]
        struct Terminal;
        impl FileOps for Terminal {
            fn is_tty(&self) -> bool {
                true
            }
        }
        let dev = new_devfs(Some(Arc::new(Terminal)), None);
        assert!(dev.lookup(b"tty").unwrap().open(2).unwrap().is_tty());
    }

    #[test]
    fn links_and_dirs() {
        let dev = new_devfs(None, None);
        assert_eq!(dev.lookup(b"fd").unwrap().readlink().unwrap(), b"/proc/self/fd");
        assert_eq!(dev.lookup(b"stderr").unwrap().readlink().unwrap(), b"/proc/self/fd/2");
        let shm = dev.lookup(b"shm").unwrap();
        assert_eq!(shm.readdir().unwrap().len(), 0);
        assert_eq!(shm.create(b"x", NewNode::File { mode: 0o600 }).err().map(|e| e.errno()), Some(Errno::EACCES));
        let names: Vec<Vec<u8>> = dev.readdir().unwrap().into_iter().map(|e| e.name).collect();
        for n in ["null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout", "stderr", "pts", "shm"] {
            assert!(names.contains(&n.as_bytes().to_vec()), "{n} missing from /dev");
        }
    }
}
