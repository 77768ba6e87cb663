//! OCI image archives made from a directory, for `ctr image import`: how
//! the engine tests give containerd an image with no registry to pull from.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Writes the archive; arguments: rootfs directory, image name, the image
/// config's `config` object (JSON), output file.
const MAKE_ARCHIVE: &str = r#"
import hashlib, io, json, sys, tarfile
rootfs, name, image_config, out = sys.argv[1:5]
blobs = {}
def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": "sha256:" + digest, "size": len(data)}
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    t.add(rootfs, arcname=".")
layer = layer.getvalue()
layer_desc = blob(layer)
config = json.dumps({"architecture": "amd64", "os": "linux", "config": json.loads(image_config),
    "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}).encode()
config_desc = blob(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(config_desc, mediaType="application/vnd.oci.image.config.v1+json"),
    "layers": [dict(layer_desc, mediaType="application/vnd.oci.image.layer.v1.tar")]}).encode()
manifest_desc = blob(manifest)
index = json.dumps({"schemaVersion": 2, "manifests": [dict(manifest_desc,
    mediaType="application/vnd.oci.image.manifest.v1+json",
    annotations={"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest"})]}).encode()
with tarfile.open(out, mode="w") as t:
    def put(path, data):
        info = tarfile.TarInfo(path); info.size = len(data); t.addfile(info, io.BytesIO(data))
    put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    put("index.json", index)
    for digest, data in blobs.items():
        put("blobs/sha256/" + digest, data)
"#;

/// An OCI image archive (`oci-layout`, `index.json`, blobs) of `rootfs` as
/// one layer, named `name`, whose image config's `config` (Cmd, Entrypoint,
/// ...) is the JSON object `config`; written into the directory `into`.
pub fn image_archive(rootfs: &Path, name: &str, config: &str, into: &Path) -> PathBuf {
    let file: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let archive = into.join(format!("{file}.tar"));
    let out = Command::new("python3")
        .arg("-c")
        .arg(MAKE_ARCHIVE)
        .arg(rootfs)
        .arg(name)
        .arg(config)
        .arg(&archive)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run python3 to build an image archive");
    assert!(out.status.success(), "building the image archive {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    archive
}
