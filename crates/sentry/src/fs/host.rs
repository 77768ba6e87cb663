//! Host-backed files: moat's own stdin/stdout/stderr handed to the app. The
//! Sentry reads and writes the host fd it was given; it opens nothing itself.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::mm::io::BOUNCE;
use crate::mm::{IoDst, IoSrc};
use crate::vfs::{FileOps, IoctlArgRef, OpenFile, PollMask, Stat};
use crate::SysResult;

/// One host fd.
#[derive(Debug)]
pub struct HostFile {
    fd: OwnedFd,
    tty: bool,
}

impl HostFile {
    pub fn new(fd: OwnedFd) -> Arc<HostFile> {
        let mut buf = [0u8; 64];
        let tty = host::sys::ioctl_buf(fd.as_fd(), TCGETS, &mut buf).is_ok();
        Arc::new(HostFile { fd, tty })
    }
}

const TCGETS: u64 = 0x5401;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;

impl FileOps for HostFile {
    /// One host read (a tty or pipe has no offsets for the kernel to move
    /// bytes by), through a bounded buffer.
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        // Sleep in poll with a short timeout so a signal to the app is noticed.
        let r = host::sys::poll_one(self.fd.as_fd(), 1, 50).map_err(crate::Error::from)?;
        if r == 0 {
            return Err(errno!(EAGAIN));
        }
        let mut buf = vec![0u8; dst.space().min(BOUNCE)];
        let n = host::sys::read(self.fd.as_fd(), &mut buf).map_err(crate::Error::from)?;
        dst.copy_out(0, &buf[..n])
    }

    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        let r = host::sys::poll_one(self.fd.as_fd(), 4, 50).map_err(crate::Error::from)?;
        if r == 0 {
            return Err(errno!(EAGAIN));
        }
        let mut buf = vec![0u8; src.size().min(BOUNCE)];
        let n = src.copy_in(0, &mut buf)?;
        host::sys::write(self.fd.as_fd(), &buf[..n]).map_err(crate::Error::from)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> PollMask {
        let r = host::sys::poll_one(self.fd.as_fd(), 1 | 4, 0).unwrap_or(0);
        PollMask::from_bits_truncate(r as u16)
    }

    fn ioctl(&self, _f: &OpenFile, req: u64, arg: &mut IoctlArgRef) -> SysResult<u64> {
        if !self.tty {
            return Err(errno!(ENOTTY));
        }
        match req {
            // The app's process groups live in the Sentry; the host's mean nothing to it.
            TIOCGPGRP => {
                arg.buf = abi::AsBytes::as_bytes(&crate::auth::current().0).to_vec();
                arg.write_back = true;
                Ok(0)
            }
            TIOCSPGRP => Ok(0),
            _ => {
                let mut buf = arg.buf.clone();
                let r = host::sys::ioctl_buf(self.fd.as_fd(), req, &mut buf).map_err(crate::Error::from)?;
                arg.buf = buf;
                Ok(r as u64)
            }
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        let mode = if self.tty { 0o020620 } else { 0o010600 };
        Ok(Stat {
            dev: 0xd,
            ino: 1,
            mode,
            nlink: 1,
            blksize: 4096,
            rdev: if self.tty { 0x8800 } else { 0 },
            ..Default::default()
        })
    }

    fn is_tty(&self) -> bool {
        self.tty
    }
}
