//! A minimal sysfs: what runtimes read to size thread pools
//! (`/sys/devices/system/cpu/{online,possible,present}`), nothing of the host's.

use super::simple::{next_ino, SimpleDir, SimpleFile};
use crate::vfs::{new_fs_id, InodeRef};

/// Builds /sys for a sandbox with `ncpus` CPUs.
pub fn new_sysfs(ncpus: usize) -> InodeRef {
    let fs = new_fs_id();
    let list = if ncpus <= 1 { "0\n".to_string() } else { format!("0-{}\n", ncpus - 1) };
    let file = |text: String| -> InodeRef {
        let bytes = text.into_bytes();
        SimpleFile::new(fs, next_ino(), 0o444, move || Ok(bytes.clone()))
    };
    let cpu = SimpleDir::fixed(
        fs,
        next_ino(),
        0o755,
        vec![
            (b"online".to_vec(), file(list.clone())),
            (b"possible".to_vec(), file(list.clone())),
            (b"present".to_vec(), file(list)),
        ],
    );
    let system = SimpleDir::fixed(fs, next_ino(), 0o755, vec![(b"cpu".to_vec(), cpu as InodeRef)]);
    let devices = SimpleDir::fixed(fs, next_ino(), 0o755, vec![(b"system".to_vec(), system as InodeRef)]);
    SimpleDir::fixed(fs, next_ino(), 0o555, vec![(b"devices".to_vec(), devices as InodeRef)])
}
