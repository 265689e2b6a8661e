//! Datasets on disk: CelebA in both layouts, image folders with a corrupt file, crop and
//! resize, the decoded cache (reuse, invalidation, damage), and a run on generated CelebA.

use std::path::Path;
use std::sync::Mutex;

use crate::common::Workspace;
use image::{Rgb, RgbImage};
use predicates::str::contains;
use vaelab::data::disk;
use vaelab::data::files::{self, CelebaLayout};
use vaelab::experiment::config::{DataConfig, DataSource, ResizeFilter};
use vaelab::progress::{EpochSummary, Reporter};

/// A 178×218 CelebA-sized JPEG: white inside the central 148×148 square, black outside,
/// tinted by `index` so files differ.
fn celeba_image(index: usize) -> RgbImage {
    let tint = (index * 37 % 200) as u8;
    RgbImage::from_fn(178, 218, |x, y| {
        let inside = (15..163).contains(&x) && (35..183).contains(&y);
        if inside {
            Rgb([255, 255, 255 - tint / 4])
        } else {
            Rgb([0, 0, 0])
        }
    })
}

const PARTITIONS: [u8; 10] = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2];

fn name(i: usize) -> String {
    format!("{:06}.jpg", i + 1)
}

fn write_celeba(root: &Path, layout: CelebaLayout) {
    let images = match layout {
        CelebaLayout::Official => root.join("img_align_celeba"),
        CelebaLayout::Kaggle => root.join("img_align_celeba/img_align_celeba"),
    };
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..PARTITIONS.len() {
        celeba_image(i).save(images.join(name(i))).unwrap();
    }
    let attrs = ["Smiling", "Male"];
    let value = |i: usize, k: usize| if (i + k).is_multiple_of(2) { "1" } else { "-1" };
    match layout {
        CelebaLayout::Official => {
            let partition: String = PARTITIONS
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{} {p}\n", name(i)))
                .collect();
            std::fs::write(root.join("list_eval_partition.txt"), partition).unwrap();
            let mut text = format!("{}\n{}\n", PARTITIONS.len(), attrs.join(" "));
            for i in 0..PARTITIONS.len() {
                text += &format!("{}  {} {}\n", name(i), value(i, 0), value(i, 1));
            }
            std::fs::write(root.join("list_attr_celeba.txt"), text).unwrap();
        }
        CelebaLayout::Kaggle => {
            let mut partition = "image_id,partition\n".to_string();
            partition += &PARTITIONS
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{},{p}\n", name(i)))
                .collect::<String>();
            std::fs::write(root.join("list_eval_partition.csv"), partition).unwrap();
            let mut text = format!("image_id,{}\n", attrs.join(","));
            for i in 0..PARTITIONS.len() {
                text += &format!("{},{},{}\n", name(i), value(i, 0), value(i, 1));
            }
            std::fs::write(root.join("list_attr_celeba.csv"), text).unwrap();
        }
    }
}

fn config(root: &Path, source: DataSource, crop: Option<u32>) -> DataConfig {
    DataConfig {
        source,
        image_size: 16,
        dataset_seed: 0,
        train_images: 4096,
        val_images: 256,
        limit: None,
        root: Some(root.to_path_buf()),
        fingerprint: None,
        crop,
        resize_filter: Some(ResizeFilter::Triangle),
        val_ratio: Some(0.3),
        split: None,
        hflip: false,
    }
}

/// Counts decodes and keeps warnings.
#[derive(Default)]
struct Recorder {
    decodes: Mutex<usize>,
    warnings: Mutex<Vec<String>>,
}

impl Recorder {
    fn warned(&self, needle: &str) -> bool {
        self.warnings
            .lock()
            .unwrap()
            .iter()
            .any(|w| w.contains(needle))
    }
}

impl Reporter for Recorder {
    fn note(&self, _: &str) {}
    fn warn(&self, message: &str) {
        self.warnings.lock().unwrap().push(message.to_string());
    }
    fn start(&self, _: &str, _: u64, _: &str) {
        *self.decodes.lock().unwrap() += 1;
    }
    fn advance(&self, _: u64, _: &str) {}
    fn finish(&self) {}
    fn epoch(&self, _: &EpochSummary) {}
}

/// The workspace's own decoded-image cache, so tests never share one.
fn cache(ws: &Workspace) -> std::path::PathBuf {
    ws.path().join("cache/datasets")
}

#[test]
fn both_celeba_layouts_give_the_same_splits_order_and_attributes() {
    let ws = Workspace::new();
    for layout in [CelebaLayout::Official, CelebaLayout::Kaggle] {
        let root = ws.path().join(format!("{layout:?}"));
        write_celeba(&root, layout);
        assert_eq!(files::detect_celeba(&root).unwrap(), layout);
        let (_, train) = files::celeba_files(&root, 0).unwrap();
        let (_, valid) = files::celeba_files(&root, 1).unwrap();
        let (_, test) = files::celeba_files(&root, 2).unwrap();
        assert_eq!(train.files, (0..6).map(name).collect::<Vec<_>>());
        assert_eq!(valid.files, vec![name(6), name(7)]);
        assert_eq!(test.files, vec![name(8), name(9)]);
        assert_eq!(train.attribute_names, vec!["Smiling", "Male"]);
        assert_eq!(train.attributes[0], vec![1, -1]);
        assert_eq!(train.attributes[1], vec![-1, 1]);
    }
}

#[test]
fn a_missing_celeba_says_what_is_missing_and_how_to_get_it() {
    let ws = Workspace::new();
    let err = files::detect_celeba(&ws.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("img_align_celeba")
            && err.contains("Kaggle")
            && err.contains("VAELAB_CELEBA_ROOT"),
        "{err}"
    );
}

#[test]
fn centre_crop_removes_the_border_and_resize_keeps_values_in_range() {
    let ws = Workspace::new();
    let path = ws.path().join("a.jpg");
    celeba_image(0).save(&path).unwrap();
    let cropped = disk::preprocess(&path, 16, Some(148), ResizeFilter::Triangle).unwrap();
    assert_eq!(cropped.len(), 3 * 16 * 16);
    let darkest = *cropped[..256].iter().min().unwrap();
    assert!(
        darkest > 200,
        "crop should keep only the white square, darkest red {darkest}"
    );
    let whole = disk::preprocess(&path, 16, None, ResizeFilter::Triangle).unwrap();
    assert!(
        whole[0] < 40,
        "without a crop the black corner stays, got {}",
        whole[0]
    );
}

#[test]
fn the_cache_is_reused_then_rebuilt_when_a_file_or_the_cache_changes() {
    let ws = Workspace::new();
    let root = ws.path().join("celeba");
    write_celeba(&root, CelebaLayout::Official);
    let cfg = config(&root, DataSource::Celeba, Some(148));
    let (_, train) = files::celeba_files(&root, 0).unwrap();
    let recorder = Recorder::default();

    let first = disk::decode_cached(&cache(&ws), &train, &cfg, "training", &recorder).unwrap();
    assert_eq!(first.images.size(), vec![6, 3, 16, 16]);
    assert_eq!(*recorder.decodes.lock().unwrap(), 1);
    let again = disk::decode_cached(&cache(&ws), &train, &cfg, "training", &recorder).unwrap();
    assert_eq!(
        *recorder.decodes.lock().unwrap(),
        1,
        "a warm cache must not decode"
    );
    assert!(first.images.equal(&again.images));
    assert!(again.attributes.equal(&first.attributes));

    // A changed image changes the key: decoded again, with the new pixels.
    let changed_file = root.join("img_align_celeba").join(name(0));
    let before = std::fs::metadata(&changed_file)
        .unwrap()
        .modified()
        .unwrap();
    RgbImage::from_pixel(178, 218, Rgb([0, 0, 0]))
        .save(&changed_file)
        .unwrap();
    // A later modification time, set rather than waited for.
    std::fs::File::options()
        .write(true)
        .open(&changed_file)
        .unwrap()
        .set_modified(before + std::time::Duration::from_secs(2))
        .unwrap();
    let changed = disk::decode_cached(&cache(&ws), &train, &cfg, "training", &recorder).unwrap();
    assert_eq!(*recorder.decodes.lock().unwrap(), 2);
    assert!(!changed.images.get(0).equal(&first.images.get(0)));
    assert!(changed.images.get(1).equal(&first.images.get(1)));

    // A damaged cache file is detected and rebuilt, never used.
    let pixels = std::fs::read_dir(cache(&ws))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "u8"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    // Damage the file in place (vaelab itself only ever replaces caches by rename, so a
    // mapping it holds never changes under it); keep a private copy to compare against.
    let expected = changed.images.copy();
    std::fs::write(&pixels, b"truncated").unwrap();
    let rebuilt = disk::decode_cached(&cache(&ws), &train, &cfg, "training", &recorder).unwrap();
    assert_eq!(*recorder.decodes.lock().unwrap(), 3);
    assert!(rebuilt.images.equal(&expected));
    assert!(recorder.warned("rebuilding"));

    // Damage that keeps the length (one flipped byte, as a bad sector or a torn copy
    // leaves) fails the checksum: rebuilt, never trained on.
    let mut bytes = std::fs::read(&pixels).unwrap();
    bytes[100] ^= 0x5a;
    std::fs::write(&pixels, &bytes).unwrap();
    let rebuilt = disk::decode_cached(&cache(&ws), &train, &cfg, "training", &recorder).unwrap();
    assert_eq!(
        *recorder.decodes.lock().unwrap(),
        4,
        "a flipped byte was served"
    );
    assert!(rebuilt.images.equal(&expected));
    // The attribute file is checked the same way.
    let attributes = pixels.with_extension("attr");
    let mut bytes = std::fs::read(&attributes).unwrap();
    bytes[0] = bytes[0].wrapping_add(2);
    std::fs::write(&attributes, &bytes).unwrap();
    let rebuilt = disk::decode_cached(&cache(&ws), &train, &cfg, "training", &recorder).unwrap();
    assert_eq!(
        *recorder.decodes.lock().unwrap(),
        5,
        "a changed attribute was served"
    );
    assert!(rebuilt.attributes.equal(&first.attributes));
}

#[test]
fn a_folder_splits_by_path_hash_and_skips_corrupt_images() {
    let ws = Workspace::new();
    let root = ws.path().join("faces");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    for i in 0..30u32 {
        let dir = if i.is_multiple_of(2) {
            root.clone()
        } else {
            root.join("sub")
        };
        let img = RgbImage::from_pixel(40, 30, Rgb([i as u8 * 8, 100, 200]));
        img.save(dir.join(format!(
            "f{i:02}.{}",
            if i.is_multiple_of(3) { "png" } else { "jpg" }
        )))
        .unwrap();
    }
    std::fs::write(root.join("broken.jpg"), b"\xff\xd8 not really a jpeg").unwrap();
    std::fs::write(root.join("notes.txt"), b"ignored").unwrap();
    let train = files::folder_files(&root, 0.3, false).unwrap();
    let val = files::folder_files(&root, 0.3, true).unwrap();
    assert_eq!(train.files.len() + val.files.len(), 31);
    assert!(
        !val.files.is_empty() && val.files.len() < 20,
        "{} in validation",
        val.files.len()
    );
    assert!(train.files.iter().all(|f| !val.files.contains(f)));
    assert_eq!(
        train.files,
        files::folder_files(&root, 0.3, false).unwrap().files,
        "the split is deterministic"
    );

    let cfg = config(&root, DataSource::Folder, None);
    let recorder = Recorder::default();
    let list = if train.files.contains(&"broken.jpg".to_string()) {
        &train
    } else {
        &val
    };
    let decoded = disk::decode_cached(&cache(&ws), list, &cfg, "training", &recorder).unwrap();
    assert_eq!(decoded.images.size()[0] as usize, list.files.len() - 1);
    assert_eq!(decoded.skipped.len(), 1);
    assert_eq!(decoded.skipped[0].0, "broken.jpg");
    assert!(recorder.warned("skipped 1 unreadable image"));
    // The cache's metadata lists the skipped file with why, for later runs to report.
    let metadata = std::fs::read_dir(cache(&ws))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("cache metadata");
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(metadata).unwrap()).unwrap();
    assert_eq!(metadata["skipped"][0][0], "broken.jpg", "{metadata}");

    // Adding files moves none of the old ones between the splits.
    for i in 30..50u32 {
        RgbImage::from_pixel(40, 30, Rgb([i as u8, 10, 20]))
            .save(root.join(format!("new{i:02}.png")))
            .unwrap();
    }
    let grown_train = files::folder_files(&root, 0.3, false).unwrap();
    let grown_val = files::folder_files(&root, 0.3, true).unwrap();
    assert_eq!(grown_train.files.len() + grown_val.files.len(), 51);
    assert!(train.files.iter().all(|f| grown_train.files.contains(f)));
    assert!(val.files.iter().all(|f| grown_val.files.contains(f)));
}

#[test]
fn a_folder_of_only_corrupt_images_is_an_error() {
    let ws = Workspace::new();
    let root = ws.path().join("bad");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.png"), b"nope").unwrap();
    let list = files::folder_files(&root, 0.5, false).unwrap();
    let list = if list.files.is_empty() {
        files::folder_files(&root, 0.5, true).unwrap()
    } else {
        list
    };
    let err = disk::decode_cached(
        &cache(&ws),
        &list,
        &config(&root, DataSource::Folder, None),
        "training",
        &Recorder::default(),
    )
    .err()
    .expect("no usable image")
    .to_string();
    assert!(err.contains("no usable image"), "{err}");
}

#[test]
fn a_run_trains_on_generated_celeba_found_through_the_environment() {
    let ws = Workspace::new();
    let root = ws.path().join("somewhere/celeba");
    write_celeba(&root, CelebaLayout::Kaggle);
    let spec = ws.write(
        "c.yaml",
        "name: celeb\ndata:\n  source: celeba\n  image_size: 16\n  crop: 148\n  hflip: true\nmodel:\n  latent_dim: 4\n  channels: [4, 8]\ntrain:\n  epochs: 1\n  batch_size: 4\n",
    );
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .env("VAELAB_CELEBA_ROOT", &root)
        .assert()
        .success()
        .stderr(contains("celeb/seed=0 epoch 1/1"));

    // The evaluation's top row shows the evaluated images: the validation partition by
    // default, the test partition with `data.split: test` (another run: identity).
    let images_shown = |split: Option<&str>, expected: [usize; 2]| {
        let text = std::fs::read_to_string(&spec).unwrap();
        let text = match split {
            Some(split) => text.replace(
                "  hflip: true\n",
                &format!("  hflip: true\n  split: {split}\n"),
            ),
            None => text,
        };
        std::fs::write(&spec, text).unwrap();
        ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
            .env("VAELAB_CELEBA_ROOT", &root)
            .assert()
            .success();
        let store = vaelab::store::RunStore::new(ws.runs());
        let run = store
            .list()
            .unwrap()
            .into_iter()
            .find(|r| {
                let config = r.read_config().unwrap().unwrap();
                config.data.split.is_some() == split.is_some()
            })
            .unwrap();
        let evaluation = run.read_evaluation().unwrap().unwrap();
        assert_eq!(evaluation.split, split.unwrap_or("validation"));
        let grid =
            image::open(run.evaluation_picture(vaelab::store::EvaluationPicture::Reconstructions))
                .unwrap()
                .to_rgb8();
        let images = root.join("img_align_celeba/img_align_celeba");
        for (cell, index) in expected.into_iter().enumerate() {
            let chw = disk::preprocess(
                &images.join(name(index)),
                16,
                Some(148),
                ResizeFilter::Triangle,
            )
            .unwrap();
            for (y, x, c) in [(0, 0, 0), (7, 9, 1), (15, 15, 2)] {
                let pixel = grid.get_pixel(2 + cell as u32 * 18 + x, 2 + y).0[c];
                assert_eq!(
                    pixel,
                    chw[c * 256 + (y * 16 + x) as usize],
                    "{split:?} cell {cell}"
                );
            }
        }
    };
    images_shown(None, [6, 7]);
    images_shown(Some("test"), [8, 9]);
    // The test images chose nothing: validation (and so `select: best`) saw the same
    // validation images in both runs, bit for bit.
    let store = vaelab::store::RunStore::new(ws.runs());
    let runs = store.list().unwrap();
    assert_eq!(runs.len(), 2);
    let val_losses: Vec<Vec<u64>> = runs
        .iter()
        .map(|r| {
            r.read_metrics()
                .unwrap()
                .iter()
                .map(|m| m.val_loss.to_bits())
                .collect()
        })
        .collect();
    assert_eq!(val_losses[0], val_losses[1]);
    for run in &runs {
        let evaluation = run.read_evaluation().unwrap().unwrap();
        assert_eq!(evaluation.images, 2, "{}", evaluation.split);
    }
}

/// `plan --json` ids of a folder spec whose root is `root`.
fn folder_ids(ws: &Workspace, root: &Path) -> Vec<String> {
    let spec = ws.write(
        "folder.yaml",
        &format!(
            "name: f\ndata:\n  source: folder\n  root: {}\n  image_size: 16\n  val_ratio: 0.5\nmodel:\n  latent_dim: 4\n  channels: [4, 8]\ntrain:\n  epochs: 1\n  batch_size: 2\n",
            root.display()
        ),
    );
    ws.planned_runs(&spec)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A run's id names the images it learns from: two folders of other images never share
/// one, the same images moved keep theirs, an added or edited image changes it.
#[test]
fn a_run_id_covers_the_images_and_not_their_path() {
    let ws = Workspace::new();
    let (a, b) = (ws.path().join("a"), ws.path().join("b"));
    for (root, offset) in [(&a, 0), (&b, 100)] {
        std::fs::create_dir_all(root).unwrap();
        for i in 0..4 {
            celeba_image(i + offset).save(root.join(name(i))).unwrap();
        }
    }
    let first = folder_ids(&ws, &a);
    assert_ne!(first, folder_ids(&ws, &b), "other images, another id");
    let moved = ws.path().join("moved/a");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&a, &moved).unwrap();
    assert_eq!(first, folder_ids(&ws, &moved), "the same images moved");
    celeba_image(50).save(moved.join(name(9))).unwrap();
    let added = folder_ids(&ws, &moved);
    assert_ne!(first, added, "an added image");
    // Edited in place with the size and modification time kept, as `cp -p` would.
    let edited_path = moved.join(name(0));
    let meta = std::fs::metadata(&edited_path).unwrap();
    let mut bytes = std::fs::read(&edited_path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&edited_path, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&edited_path)
        .unwrap()
        .set_modified(meta.modified().unwrap())
        .unwrap();
    // Moved again, so its inode-keyed memo cannot answer for it: hashed afresh.
    let again = ws.path().join("again");
    std::fs::rename(&moved, &again).unwrap();
    assert_ne!(added, folder_ids(&ws, &again), "an edited image");

    // config.yaml and state.json record the fingerprint and the root used.
    let spec = ws.path().join("folder.yaml");
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let run = ws.single_run_dir();
    let state = crate::common::read_state(&run);
    let config = std::fs::read_to_string(run.join("config.yaml")).unwrap();
    let fingerprint = state["data_fingerprint"].as_str().unwrap();
    assert!(
        config.contains(&format!("fingerprint: {fingerprint}")),
        "{config}"
    );
    assert_eq!(
        state["data_root"].as_str().unwrap(),
        std::fs::canonicalize(&again).unwrap().to_str().unwrap()
    );
    // The data changes after training: plan says so of the run it no longer produces.
    celeba_image(60).save(again.join(name(8))).unwrap();
    let spec_text = spec.to_str().unwrap();
    ws.vaelab(&["plan", spec_text])
        .assert()
        .success()
        .stdout(contains("data changed since trained"))
        .stdout(contains("data: folder at "));
    // The decoded images of the old content are stale: gc lists them with their size and
    // removes them with --apply.
    assert_eq!(
        files::cache_entries(&cache(&ws)).len(),
        2,
        "training and validation"
    );
    ws.vaelab(&["gc", spec_text])
        .assert()
        .success()
        .stdout(contains("stale data cache"));
    assert_eq!(
        files::cache_entries(&cache(&ws)).len(),
        2,
        "listing removes nothing"
    );
    ws.vaelab(&["gc", spec_text, "--apply"]).assert().success();
    assert_eq!(files::cache_entries(&cache(&ws)), vec![]);
}

#[test]
fn the_data_benchmark_generates_a_celeba_tree_and_compares_cache_with_memory() {
    let ws = Workspace::new();
    let root = ws.path().join("gen");
    let out = ws
        .tiny_bench(8)
        .args([
            "--data-dir",
            root.to_str().unwrap(),
            "--generate",
            "16",
            "--crop",
            "148",
            "--json",
        ])
        .assert()
        .success();
    let result: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(result["images"], 16);
    // Timings cannot be pinned; what they are derived from can: the rate is the images
    // over the seconds, the overhead the two epochs' ratio, every figure finite.
    let figure = |name: &str| {
        let value = result[name].as_f64().unwrap_or(f64::NAN);
        assert!(value.is_finite(), "{name}: {result}");
        value
    };
    let (seconds, rate) = (figure("decode_seconds"), figure("decode_images_per_second"));
    assert!((rate * seconds - 16.0).abs() < 1e-6, "{result}");
    let (cached, memory) = (
        figure("epoch_seconds_cached"),
        figure("epoch_seconds_in_memory"),
    );
    assert!(cached > 0.0 && memory > 0.0, "{result}");
    let overhead = figure("cached_overhead_percent");
    assert!(
        (overhead - 100.0 * (cached / memory - 1.0)).abs() < 1e-9,
        "{result}"
    );
    let (_, list) = files::celeba_files(&root, 0).unwrap();
    assert_eq!(list.files.len(), 16);
    let first = image::open(list.root.join(&list.files[0])).unwrap();
    assert_eq!((first.width(), first.height()), (178, 218));
}

/// A noisy 64×48 image, so that its compressed data spans the whole file.
fn noisy_image() -> RgbImage {
    RgbImage::from_fn(64, 48, |x, y| {
        let v = (x * 7919 + y * 104_729) % 251;
        Rgb([v as u8, (v * 3 % 256) as u8, (255 - v) as u8])
    })
}

/// A partly downloaded JPEG, PNG or WebP (its first third) is not decoded into grey rows:
/// it is an error naming the truncation, and a folder dataset skips and lists it.
#[test]
fn truncated_jpeg_png_and_webp_files_are_detected_and_skipped() {
    let ws = Workspace::new();
    let root = ws.path().join("faces");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..12u32 {
        noisy_image()
            .save(root.join(format!("whole{i:02}.png")))
            .unwrap();
    }
    let mut truncated = Vec::new();
    for extension in ["jpg", "png", "webp"] {
        let whole = root.join(format!("sample.{extension}"));
        noisy_image().save(&whole).unwrap();
        disk::preprocess(&whole, 16, None, ResizeFilter::Triangle)
            .unwrap_or_else(|e| panic!("a whole {extension} decodes: {e}"));
        let bytes = std::fs::read(&whole).unwrap();
        std::fs::remove_file(&whole).unwrap();
        let name = format!("partial.{extension}");
        let path = root.join(&name);
        std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
        let err = disk::preprocess(&path, 16, None, ResizeFilter::Triangle).unwrap_err();
        assert!(err.starts_with("truncated"), "{extension}: {err}");
        truncated.push(name);
    }
    let mut skipped = Vec::new();
    for validation in [false, true] {
        let list = files::folder_files(&root, 0.3, validation).unwrap();
        let decoded = disk::decode_cached(
            &cache(&ws),
            &list,
            &config(&root, DataSource::Folder, None),
            "training",
            &Recorder::default(),
        )
        .unwrap();
        let skipped_here = list
            .files
            .iter()
            .filter(|f| f.starts_with("partial"))
            .count();
        assert_eq!(
            decoded.images.size()[0] as usize,
            list.files.len() - skipped_here
        );
        skipped.extend(decoded.skipped);
    }
    let mut names: Vec<String> = skipped.iter().map(|(name, _)| name.clone()).collect();
    names.sort();
    truncated.sort();
    assert_eq!(names, truncated);
    assert!(
        skipped.iter().all(|(_, why)| why.contains("truncated")),
        "{skipped:?}"
    );
}
