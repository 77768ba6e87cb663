//! Reading and writing cgroup files and directories: one write(2) per
//! value, errors that name the file, and rmdir retried while busy.

use std::fs;
use std::io::{self, Write as _};
use std::path::Path;
use std::thread;

use super::{CgroupError, Result, POLL_ATTEMPTS, POLL_INTERVAL};

/// Makes `dir` and its missing parents; says whether `dir` itself was new.
pub(super) fn create_dir(dir: &Path) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(dir).map_err(|source| CgroupError::Create { path: dir.to_path_buf(), source })?;
    Ok(true)
}

/// rmdir, retried while the kernel says the cgroup is busy.
pub(super) fn remove_dir(dir: &Path) -> Result<()> {
    let mut attempt = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < POLL_ATTEMPTS => {
                attempt += 1;
                thread::sleep(POLL_INTERVAL);
            }
            Err(source) => return Err(CgroupError::Remove { path: dir.to_path_buf(), source }),
        }
    }
}

/// Writes `value` to an existing cgroup file in one write(2), which is how
/// the kernel wants it; never creates the file.
pub(super) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write { path, value: value.to_owned(), source })
}

/// A cgroup file's contents without the trailing newline.
pub(super) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim_end().to_owned()),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Like `read`, but `None` when the file does not exist.
pub(super) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    match read(dir, file) {
        Ok(text) => Ok(Some(text)),
        Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn parse_u64(dir: &Path, file: &str, text: &str, expected: &'static str) -> Result<u64> {
    text.trim().parse().map_err(|_| CgroupError::Parse { path: dir.join(file), contents: text.to_owned(), expected })
}

pub(super) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    parse_u64(dir, file, &read(dir, file)?, "a number")
}

pub(super) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    read_opt(dir, file)?.map(|text| parse_u64(dir, file, &text, "a number")).transpose()
}

/// A limit file holding a number or "max": `None` when the file does not
/// exist, `Some(None)` for "max".
pub(super) fn read_max_opt(dir: &Path, file: &str) -> Result<Option<Option<u64>>> {
    let Some(text) = read_opt(dir, file)? else {
        return Ok(None);
    };
    if text == "max" {
        return Ok(Some(None));
    }
    parse_u64(dir, file, &text, "a number or \"max\"").map(|n| Some(Some(n)))
}

/// The value of `key` in a flat-keyed file (`key value` lines): `None` when
/// the file or the key is absent.
pub(super) fn read_keyed(dir: &Path, file: &str, key: &str) -> Result<Option<u64>> {
    let Some(text) = read_opt(dir, file)? else {
        return Ok(None);
    };
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(' ') {
            if k == key {
                return parse_u64(dir, file, v, "\"key number\" lines").map(Some);
            }
        }
    }
    Ok(None)
}
