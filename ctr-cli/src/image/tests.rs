//! Store-level tests: imports end to end, in temporary stores.

use super::unpack::tests::RawTar;
use super::*;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// A tarball shaped like a distribution's minirootfs (Alpine's: one
/// multi-call binary, its applets as absolute symlinks, an os-release),
/// made here so that the test needs nothing beside the checkout.
fn minirootfs_tarball() -> Vec<u8> {
    // Over a megabyte, and not compressible to nothing.
    let busybox: Vec<u8> = (0u32..300_000).flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()).collect();
    let tar = RawTar::default()
        .dir("bin/", 0o755)
        .entry(b"bin/busybox", tar::EntryType::Regular, b"", 0o755, &busybox)
        .symlink("bin/sh", "/bin/busybox")
        .symlink("bin/ls", "/bin/busybox")
        .dir("etc/", 0o755)
        .file("etc/os-release", b"NAME=\"Minirootfs\"\nID=minirootfs\n")
        .dir("tmp/", 0o1777)
        .finish();
    gzip(&tar)
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        Fixture { dir, store }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn import(&self, path: &Path, reference: &str) -> Result<ImageRecord> {
        self.store.import(ImportSource::File(path.to_path_buf()), reference, ImageConfig::default())
    }

    fn names_in(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.store.root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn layer_dirs(&self) -> Vec<String> {
        self.names_in("layers")
    }
}

fn small_tar() -> Vec<u8> {
    RawTar::default().dir("bin/", 0o755).file("bin/sh", b"#!fake shell\n").symlink("bin/ash", "sh").finish()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn imports_a_minirootfs() {
    let fx = Fixture::new();
    let tarball = fx.write("minirootfs.tar.gz", &minirootfs_tarball());
    let record = fx.import(&tarball, "mini").unwrap();
    let busybox = fs::symlink_metadata(record.rootfs().join("bin/busybox")).unwrap();
    assert!(busybox.is_file() && busybox.mode() & 0o111 != 0, "mode {:o}", busybox.mode());
    assert!(fs::read_to_string(record.rootfs().join("etc/os-release")).unwrap().contains("Minirootfs"));
    assert_eq!(fs::read_link(record.rootfs().join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
    assert_eq!(fs::symlink_metadata(record.rootfs().join("tmp")).unwrap().mode() & 0o7777, 0o1777);
    assert_eq!(record.references, ["mini:latest"]);
    assert!(record.size > 1_000_000, "size {}", record.size);
    digest::hex(&record.id).unwrap();
    assert_eq!(fx.store.lookup("mini:latest").unwrap().unwrap().id, record.id);
}

#[test]
fn recognises_compression_by_content_not_name() {
    let fx = Fixture::new();
    let tar = small_tar();
    let archives = [
        ("plain", tar.clone()),
        ("gzip", gzip(&tar)),
        ("zstd", zstd::encode_all(&tar[..], 3).unwrap()),
        ("xz", xz(&tar)),
    ];
    let mut ids = Vec::new();
    for (tag, bytes) in archives {
        // Misleading names on purpose.
        let path = fx.write(&format!("{tag}.zip"), &bytes);
        let record = fx.import(&path, &format!("small:{tag}")).unwrap_or_else(|e| panic!("{tag}: {e:?}"));
        assert_eq!(fs::read(record.rootfs().join("bin/sh")).unwrap(), b"#!fake shell\n");
        ids.push(record.id);
    }
    // One content, one config: one image with four tags, one layer.
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(fx.layer_dirs().len(), 1);
    let record = fx.store.lookup(&ids[0]).unwrap().unwrap();
    assert_eq!(record.references, ["small:gzip", "small:plain", "small:xz", "small:zstd"]);
    let layer = fx.store.read_layer(&fx.store.layers_dir().join(&fx.layer_dirs()[0])).unwrap();
    assert_eq!(layer.source_digests.len(), 4);
    assert_eq!(layer.diff_id, digest::of_bytes(&tar));
}

#[test]
fn importing_again_gives_the_same_image_without_unpacking() {
    let fx = Fixture::new();
    let path = fx.write("small.tar.gz", &gzip(&small_tar()));
    let reference = Reference::parse("small").unwrap();
    let source = ImportSource::File(path);
    let (first, reused) = fx.store.import_from(source.clone(), &reference, ImageConfig::default()).unwrap();
    assert!(!reused);
    let inode = fs::metadata(first.rootfs().join("bin/sh")).unwrap().ino();
    let (second, reused) = fx.store.import_from(source, &reference, ImageConfig::default()).unwrap();
    assert!(reused, "the second import must find the layer by the archive's digest");
    assert_eq!((&second.id, second.created), (&first.id, first.created));
    assert_eq!(fs::metadata(second.rootfs().join("bin/sh")).unwrap().ino(), inode);
    assert_eq!(fx.store.list().unwrap().len(), 1);
}

#[test]
fn a_stream_of_a_known_layer_is_unpacked_then_dropped() {
    let fx = Fixture::new();
    let tar = small_tar();
    let first = fx.import(&fx.write("small.tar", &tar), "small").unwrap();
    // What `ImportSource::Stdin` does, with another compression.
    let layer = fx
        .store
        .layer_from(io::Cursor::new(zstd::encode_all(&tar[..], 1).unwrap()), UnpackMode::Rootfs, &Expected::default())
        .unwrap();
    assert!(layer.reused);
    assert_eq!(layer.diff_id, digest::of_bytes(&tar));
    assert_eq!(fx.layer_dirs().len(), 1, "the second copy was not kept");
    assert!(first.rootfs().join("bin/sh").exists());
}

#[test]
fn a_different_config_is_a_different_image_on_the_same_layer() {
    let fx = Fixture::new();
    let path = fx.write("small.tar", &small_tar());
    let plain = fx.import(&path, "small:plain").unwrap();
    let config = ImageConfig { cmd: vec!["/bin/sh".into()], ..ImageConfig::default() };
    let with_cmd = fx.store.import(ImportSource::File(path), "small:cmd", config.clone()).unwrap();
    assert_ne!(plain.id, with_cmd.id);
    assert_eq!(plain.rootfs(), with_cmd.rootfs());
    assert_eq!(with_cmd.config, config);
    assert_eq!(fx.layer_dirs().len(), 1);
}

#[test]
fn looks_up_by_name_tag_and_id_prefix() {
    let fx = Fixture::new();
    let record = fx.import(&fx.write("small.tar", &small_tar()), "team/small:1.0").unwrap();
    let hex = digest::hex(&record.id).unwrap().to_owned();
    let found = |s: &str| fx.store.lookup(s).unwrap().map(|r| r.id);
    assert_eq!(found("team/small:1.0").as_ref(), Some(&record.id));
    assert_eq!(found("team/small"), None, "team/small means team/small:latest");
    fx.import(&fx.write("small2.tar", &small_tar()), "team/small").unwrap();
    assert_eq!(found("team/small").as_ref(), Some(&record.id));
    for by_id in [&hex[..4], &hex[..12], &hex, &format!("sha256:{}", &hex[..4]), &record.id, &hex[..12].to_uppercase()]
    {
        assert_eq!(found(by_id).as_ref(), Some(&record.id), "{by_id}");
    }
    let other_prefix = if hex.starts_with("0000") { "1111" } else { "0000" };
    assert_eq!(found(other_prefix), None);
    assert_eq!(found(&hex[..3]), None, "3 hex digits is a name, not an id prefix");
    assert!(fx.store.lookup("sha256:abc").is_err());
    assert!(fx.store.lookup("Not A Name").is_err());
    assert_eq!(found("missing"), None);
}

#[test]
fn ambiguous_id_prefixes_are_errors() {
    let hexes = ["abcd1".repeat(13)[..64].to_owned(), "abcd2".repeat(13)[..64].to_owned()];
    assert!(unique_match("abcd", &hexes).unwrap_err().to_string().contains("ambiguous"));
    assert_eq!(unique_match("abcd1", &hexes).unwrap(), Some(hexes[0].as_str()));
    assert_eq!(unique_match("ffff", &hexes).unwrap(), None);
}

#[test]
fn moving_a_reference_leaves_the_old_image_untagged() {
    let fx = Fixture::new();
    let old = fx.import(&fx.write("a.tar", &small_tar()), "app").unwrap();
    let other = RawTar::default().file("other", b"x").finish();
    let new = fx.import(&fx.write("b.tar", &other), "app").unwrap();
    assert_ne!(old.id, new.id);
    let list = fx.store.list().unwrap();
    assert_eq!(list.len(), 2);
    let untagged = list.iter().find(|r| r.id == old.id).unwrap();
    assert!(untagged.references.is_empty());
    assert_eq!(fx.store.lookup("app").unwrap().unwrap().id, new.id);
}

#[test]
fn a_failed_import_leaves_nothing_behind() {
    let fx = Fixture::new();
    let hostile = RawTar::default().file("fine", b"x").symlink("a", "/etc").file("a/passwd", b"pwned").finish();
    let err = fx.import(&fx.write("hostile.tar", &gzip(&hostile)), "hostile").unwrap_err();
    let message = crate::error::chain(&err);
    assert!(message.contains("cannot import") && message.contains("is a symlink"), "{message}");
    assert!(fx.layer_dirs().is_empty(), "{:?}", fx.layer_dirs());
    assert!(fx.names_in("images").is_empty());
    assert_eq!(fx.names_in(""), ["blobs", "images", "layers", "lock"]);
    assert!(fx.names_in("blobs/sha256").is_empty(), "{:?}", fx.names_in("blobs/sha256"));

    let truncated = gzip(&small_tar()[..700]);
    assert!(fx.import(&fx.write("truncated.tar.gz", &truncated), "t").is_err());
    assert!(fx.layer_dirs().is_empty());
}

#[test]
fn refuses_bad_references_before_reading() {
    let fx = Fixture::new();
    let err = fx.import(Path::new("/nonexistent"), "Bad Name").unwrap_err();
    assert!(err.to_string().contains("invalid image name"), "{err}");
    let err = fx.import(Path::new("/nonexistent"), "good").unwrap_err();
    assert!(crate::error::chain(&err).contains("cannot open /nonexistent"), "{err:?}");
}

#[test]
fn an_import_cleans_up_after_an_interrupted_one() {
    let fx = Fixture::new();
    let stale = fx.store.layers_dir().join(".tmp-crashed");
    fs::create_dir_all(stale.join("rootfs/dir")).unwrap();
    fs::write(fx.store.images_dir().join(".tmp-half.json"), b"{").unwrap();
    fx.import(&fx.write("small.tar", &small_tar()), "small").unwrap();
    assert!(!stale.exists());
    assert_eq!(fx.names_in("images").len(), 1);
}

#[test]
fn concurrent_imports_share_one_layer() {
    let fx = Arc::new(Fixture::new());
    let tarball = fx.write("minirootfs.tar.gz", &minirootfs_tarball());
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (fx, tarball) = (Arc::clone(&fx), tarball.clone());
            std::thread::spawn(move || fx.import(&tarball, "shared").map(|r| r.id))
        })
        .collect();
    let ids: Vec<String> = threads.into_iter().map(|t| t.join().unwrap().unwrap()).collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(fx.layer_dirs().len(), 1, "{:?}", fx.layer_dirs());
}

#[test]
fn imports_a_builtin_image_with_its_config() {
    let fx = Fixture::new();
    let images = fx.dir.path().join("share/ctr/images");
    fs::create_dir_all(&images).unwrap();
    assert!(fx.store.import_builtin(&images, "busybox").unwrap().is_none());

    fs::write(images.join("busybox.tar"), small_tar()).unwrap();
    let err = fx.store.import_builtin(&images, "busybox").unwrap_err();
    assert!(crate::error::chain(&err).contains("reinstall ctr"), "{err:?}");

    fs::write(images.join("busybox.json"), r#"{"cmd": ["sh"], "env": ["PATH=/bin"]}"#).unwrap();
    let record = fx.store.import_builtin(&images, "busybox").unwrap().unwrap();
    assert_eq!(record.config.cmd, ["sh"]);
    assert_eq!(record.config.env, ["PATH=/bin"]);
    assert_eq!(record.references, ["busybox:latest"]);
    assert_eq!(fx.store.lookup("busybox").unwrap().unwrap().id, record.id);
    assert!(fx.store.import_builtin(&images, "../busybox").unwrap().is_none());
    assert!(fx.store.import_builtin(&images, "busybox:1.36").unwrap().is_none());
}

#[test]
fn builtin_configs_are_parsed_strictly() {
    let config = ImageConfig::from_json(r#"{"cmd": ["sh"], "working_dir": "/root", "user": "0:0"}"#).unwrap();
    assert_eq!(config.working_dir.as_deref(), Some("/root"));
    assert_eq!(ImageConfig::from_json("{}").unwrap(), ImageConfig::default());
    let typo = ImageConfig::from_json(r#"{"Cmd": ["sh"]}"#).unwrap_err();
    assert!(typo.to_string().contains("unknown key \"Cmd\""), "{typo}");
    assert!(ImageConfig::from_json(r#"{"env": ["NOVALUE"]}"#).is_err());
    assert!(ImageConfig::from_json(r#"{"env": ["=x"]}"#).is_err());
    assert!(ImageConfig::from_json(r#"{"cmd": "sh"}"#).is_err());
    assert!(ImageConfig::from_json("[]").is_err());
}

#[test]
fn state_files_are_private_and_well_formed() {
    let fx = Fixture::new();
    let record = fx.import(&fx.write("small.tar", &small_tar()), "small").unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&fx.store.root), 0o700);
    assert_eq!(mode(&fx.store.repositories_path()), 0o600);
    assert_eq!(mode(record.rootfs().parent().unwrap()), 0o700);
    let image: ImageFile = state::read_json(&fx.store.image_path(digest::hex(&record.id).unwrap())).unwrap().unwrap();
    let blobs = image.blobs.expect("an import keeps its blobs");
    assert_eq!(blobs.config.digest, record.id);
    let config = fs::read(fx.store.blob_path(digest::hex(&record.id).unwrap())).unwrap();
    assert_eq!(digest::of_bytes(&config), record.id, "the id is the config blob's digest");
    assert!(fx.store.has_blob(&blobs.layers[0].digest));
    humantime::parse_rfc3339(&image.created).unwrap();
}

/// A docker-archive (as `docker save` and skopeo write it) of a 2-layer
/// image whose second layer deletes a file of the first and makes a
/// directory opaque; `shared` is a first layer to share between images.
fn docker_archive(layers: &[Vec<u8>], tag: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest::of_bytes(l)).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "WorkingDir": "/srv", "ExposedPorts": {"80/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", digest::hex(&digest::of_bytes(&config)).unwrap());
    let mut tar = RawTar::default().file(&config_name, &config);
    let mut names = Vec::new();
    for (layer, diff_id) in layers.iter().zip(&diff_ids) {
        let name = format!("{}/layer.tar", &digest::hex(diff_id).unwrap()[..20]);
        tar = tar.file(&name, layer);
        names.push(name);
    }
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": names}]);
    tar.file("manifest.json", &serde_json::to_vec(&manifest).unwrap()).finish()
}

fn base_layer() -> Vec<u8> {
    RawTar::default()
        .dir("etc/", 0o755)
        .file("etc/gone", b"deleted in layer 2")
        .dir("opaque/", 0o755)
        .file("opaque/old", b"hidden by layer 2")
        .file("bin/sh", b"#!fake\n")
        .finish()
}

fn top_layer() -> Vec<u8> {
    RawTar::default()
        .file("etc/.wh.gone", b"")
        .dir("opaque/", 0o755)
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/new", b"n")
        .finish()
}

#[test]
fn loads_a_layered_docker_archive_with_whiteouts_and_saves_it_back() {
    let fx = Fixture::new();
    let path = fx.write("image.tar", &docker_archive(&[base_layer(), top_layer()], "app:1"));
    let loaded = archive::load(&fx.store, archive::LoadInput::Path(path), &progress::Progress::quiet()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].references, ["app:1"]);
    let record = fx.store.lookup("app:1").unwrap().unwrap();
    assert_eq!(record.id, loaded[0].id);
    assert_eq!(record.lower_dirs.len(), 2);
    assert_eq!(record.config.working_dir.as_deref(), Some("/srv"));
    assert_eq!(record.config.exposed_ports, ["80/tcp"]);
    let top = &record.lower_dirs[0];
    let whiteout = fs::symlink_metadata(top.join("etc/gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&whiteout.file_type()));
    assert_eq!(whiteout.rdev(), 0);
    let mut value = [0u8; 4];
    let path = std::ffi::CString::new(top.join("opaque").as_os_str().as_encoded_bytes()).unwrap();
    let name = std::ffi::CString::new(unpack::OPAQUE_XATTR).unwrap();
    // SAFETY: valid C strings and a buffer of the length given.
    let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    assert_eq!(n, 1, "the opaque xattr is set");
    assert_eq!(value[0], b'y');

    for format in [archive::SaveFormat::DockerArchive, archive::SaveFormat::Oci] {
        let mut saved = Vec::new();
        let names = vec![Reference::parse("app:1").unwrap()];
        archive::save(&fx.store, &[(record.clone(), names)], format, &mut saved).unwrap();
        let other = Fixture::new();
        let path = other.write("saved.tar", &saved);
        let again = archive::load(&other.store, archive::LoadInput::Path(path), &progress::Progress::quiet()).unwrap();
        assert_eq!(again[0].id, record.id, "{format:?}: save then load keeps the image id");
        assert_eq!(again[0].references, ["app:1"], "{format:?}");
    }
}

#[test]
fn shared_layers_are_stored_once_and_removal_keeps_what_others_use() {
    let fx = Fixture::new();
    let other_top = RawTar::default().file("other", b"o").finish();
    for (tag, layers) in [("one", vec![base_layer(), top_layer()]), ("two", vec![base_layer(), other_top])] {
        let path = fx.write(&format!("{tag}.tar"), &docker_archive(&layers, tag));
        archive::load(&fx.store, archive::LoadInput::Path(path), &progress::Progress::quiet()).unwrap();
    }
    assert_eq!(fx.layer_dirs().len(), 3, "the shared base layer is stored once");
    let nobody = |_: &str| Vec::new();
    let one = fx.store.lookup("one").unwrap().unwrap();
    let err =
        fx.store.remove("one", false, &|id: &str| if id == one.id { vec!["web".into()] } else { vec![] }).unwrap_err();
    assert!(err.to_string().contains("in use by container web"), "{err}");
    let removal = fx.store.remove("one", false, &nobody).unwrap();
    assert_eq!(removal.untagged, ["one:latest"]);
    assert!(removal.deleted.contains(&one.id));
    assert_eq!(fx.layer_dirs().len(), 2, "the shared layer stays for `two`");
    let two = fx.store.lookup("two").unwrap().unwrap();
    assert!(two.lower_dirs.iter().all(|d| d.is_dir()));
    assert!(fx.store.lookup("one").unwrap().is_none());

    // Untagged by moving the name: prune deletes it and its layers.
    fx.import(&fx.write("small.tar", &small_tar()), "two").unwrap();
    let pruned = fx.store.prune(false, &nobody).unwrap();
    assert!(pruned.deleted.contains(&two.id), "{pruned:?}");
    assert!(pruned.reclaimed > 0);
    assert_eq!(fx.layer_dirs().len(), 1, "{:?}", fx.layer_dirs());
    assert_eq!(fx.store.list().unwrap().len(), 1);
}

#[test]
fn tags_and_digest_references() {
    let fx = Fixture::new();
    let record = fx.import(&fx.write("small.tar", &small_tar()), "small").unwrap();
    fx.store.tag("small", "localhost:5000/small:v2").unwrap();
    let found = fx.store.lookup("localhost:5000/small:v2").unwrap().unwrap();
    assert_eq!(found.id, record.id);
    assert_eq!(found.references, ["localhost:5000/small:v2", "small:latest"]);
    assert_eq!(fx.store.lookup("docker.io/library/small:latest").unwrap().unwrap().id, record.id);
    let err = fx.store.remove(&record.id, false, &|_: &str| Vec::new()).unwrap_err();
    assert!(err.to_string().contains("referenced by 2 names"), "{err}");
    fx.store.remove(&record.id, true, &|_: &str| Vec::new()).unwrap();
    assert!(fx.store.list().unwrap().is_empty());
}

#[test]
fn a_layer_that_does_not_match_its_digests_is_refused_and_leaves_nothing() {
    let fx = Fixture::new();
    let layer = base_layer();
    let _lock = fx.store.lock().unwrap();
    let wrong = Expected { diff_id: Some(digest::of_bytes(b"something else")), ..Expected::default() };
    let err = fx.store.layer_from(&layer[..], UnpackMode::Layer, &wrong).unwrap_err();
    assert!(err.to_string().contains("refusing it"), "{err}");
    let wrong_size =
        Expected { blob: Some((digest::of_bytes(&layer), layer.len() as u64 - 512)), ..Expected::default() };
    let err = fx.store.layer_from(&layer[..], UnpackMode::Layer, &wrong_size).unwrap_err();
    assert!(crate::error::chain(&err).contains("larger than"), "{err:?}");
    let wrong_digest = Expected { blob: Some((digest::of_bytes(b"x"), layer.len() as u64)), ..Expected::default() };
    let err = fx.store.layer_from(&layer[..], UnpackMode::Layer, &wrong_digest).unwrap_err();
    assert!(err.to_string().contains("does not match its digest"), "{err}");
    assert!(fx.layer_dirs().is_empty());
    assert!(fx.names_in("blobs/sha256").is_empty());
}

/// A gzip of a tar with one `size`-byte file of zeros, made of repeated
/// gzip members of 1 MiB of zeros (quick to make; ~1000:1).
fn zeros_bomb(size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut out = gzip(header.as_bytes());
    let mib = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..size >> 20 {
        out.extend_from_slice(&mib);
    }
    out.extend_from_slice(&gzip(&[0u8; 1024]));
    out
}

#[test]
fn a_decompression_bomb_is_refused_and_leaves_nothing() {
    let fx = Fixture::new();
    let bomb = zeros_bomb(64 << 20);
    let err = fx.store.layer_from(&bomb[..], UnpackMode::Rootfs, &Expected::default()).unwrap_err();
    let message = crate::error::chain(&err);
    assert!(message.contains("max_unpack_ratio") && message.contains("100:1"), "{message}");
    assert!(fx.layer_dirs().is_empty(), "left behind: {:?}", fx.layer_dirs());
    assert!(fx.names_in("blobs/sha256").is_empty(), "left behind: {:?}", fx.names_in("blobs/sha256"));
    // Within the ratio the user allows, the same bytes are a layer.
    let store = Store::open(&fx.store.root)
        .unwrap()
        .with_unpack_limits(guard::UnpackLimits { max_ratio: Some(2000), ..Default::default() });
    let layer = store.layer_from(&bomb[..], UnpackMode::Rootfs, &Expected::default()).unwrap();
    assert_eq!(layer.size, 64 << 20);
    // The total over one operation counts every layer.
    let small = guard::UnpackLimits { max_ratio: None, max_size: Some(1 << 20), timeout: None };
    let store = Store::open(&fx.store.root).unwrap().with_unpack_limits(small);
    let err = crate::error::chain(
        &store.layer_from(&zeros_bomb(2 << 20)[..], UnpackMode::Rootfs, &Expected::default()).unwrap_err(),
    );
    assert!(err.contains("max_unpack_size"), "{err}");
}
