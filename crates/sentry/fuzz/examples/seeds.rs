//! Writes the fuzz targets' seed inputs under the directory given (default
//! `seeds`): `<dir>/frames/<name>` and `<dir>/netlink/<name>`.
#![forbid(unsafe_code)]

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "seeds".into()));
    for (target, seeds) in [("frames", sentry_fuzz::frame_seeds()), ("netlink", sentry_fuzz::netlink_seeds())] {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        for (name, bytes) in seeds {
            std::fs::write(d.join(name), bytes)?;
        }
    }
    Ok(())
}
