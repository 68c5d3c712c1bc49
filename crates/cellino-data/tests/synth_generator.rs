//! The synthetic cell generator: determinism, files that the crate's own readers and manifest
//! dataset open, and the separability property (intensity statistics alone are at chance, the
//! spatial pattern is not).

use cellino_data::{
    Dataset, ImageSource, MultiChannelImage, SYNTH_CELL_LINES, SYNTH_CLASSES, SampleType, SynthConfig, SynthFormat,
    SynthSplit, generate_cell, generate_cells, read_image, write_synthetic_dataset,
};

fn files_in(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("images"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out.push(("manifest.csv".into(), std::fs::read(dir.join("manifest.csv")).unwrap()));
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let config = SynthConfig { num_images: 24, size: 32, ..SynthConfig::default() };
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_synthetic_dataset(a.path(), &config).unwrap();
    // Same configuration on one thread: identical bytes.
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| write_synthetic_dataset(b.path(), &config))
        .unwrap();
    let files = files_in(a.path());
    assert_eq!(files.len(), 25);
    assert_eq!(files, files_in(b.path()));
    write_synthetic_dataset(c.path(), &SynthConfig { seed: 1, ..config.clone() }).unwrap();
    let other = files_in(c.path());
    assert!(files.iter().zip(&other).take(24).all(|(x, y)| x.1 != y.1));
    // In memory, crop i is the same whether generated alone or with the others.
    let all = generate_cells(&config).unwrap();
    assert_eq!(all[7], generate_cell(&config, 7).unwrap());
}

fn check_dataset(config: &SynthConfig, ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_synthetic_dataset(dir.path(), config).unwrap();
    let dataset = Dataset::from_manifest(&manifest, &config.manifest_options()).unwrap();
    assert_eq!(dataset.len(), config.num_images);
    assert_eq!(dataset.labels.names(), config.class_names());
    assert_eq!(dataset.metadata_columns, ["cell_line", "split"]);
    let cells = generate_cells(config).unwrap();
    for (i, cell) in cells.iter().enumerate() {
        let record = &dataset.records[i];
        let ImageSource::File(path) = &record.source else { panic!("one file per image") };
        assert_eq!(path.extension().unwrap(), ext);
        assert_eq!(record.target.class(), Some(cell.label));
        assert_eq!(dataset.metadata(i, "cell_line"), Some(SYNTH_CELL_LINES[cell.cell_line]));
        assert_eq!(dataset.metadata(i, "split"), Some(cell.split.name()));
        let sample = dataset.load(i).unwrap();
        let image = &sample.image;
        assert_eq!(image.shape(), (config.channels, config.size, config.size));
        assert_eq!(image.sample_type, config.sample_type);
        assert_eq!(image.data, cell.image.data, "pixels of {}", path.display());
        let names: Vec<String> = image.channel_names.iter().map(|n| n.clone().unwrap()).collect();
        assert_eq!(names, config.channel_names());
        if ext == "tif" {
            // The OME-XML in the TIFF names the channels by itself.
            assert_eq!(read_image(path, &Default::default()).unwrap().channel_names, cell.image.channel_names);
        }
    }
}

#[test]
fn manifest_opens_and_images_read_back() {
    let base = SynthConfig { num_images: 12, size: 40, ..SynthConfig::default() };
    check_dataset(&base, "png");
    check_dataset(&SynthConfig { channels: 3, classes: 3, cell_lines: 4, ..base.clone() }, "png");
    check_dataset(&SynthConfig { channels: 1, ..base.clone() }, "png");
    check_dataset(&SynthConfig { channels: 5, ..base.clone() }, "tif");
    check_dataset(&SynthConfig { sample_type: SampleType::U16, ..base.clone() }, "tif");
    check_dataset(&SynthConfig { sample_type: SampleType::U16, channels: 8, ..base.clone() }, "tif");
    check_dataset(&SynthConfig { sample_type: SampleType::U16, format: SynthFormat::Png, ..base.clone() }, "png");
    check_dataset(&SynthConfig { channels: 2, format: SynthFormat::Tiff, ..base }, "tif");
}

#[test]
fn configuration_is_checked_and_values_are_in_range() {
    for bad in [
        SynthConfig { channels: 0, ..SynthConfig::default() },
        SynthConfig { channels: 9, ..SynthConfig::default() },
        SynthConfig { classes: 7, ..SynthConfig::default() },
        SynthConfig { cell_lines: 0, ..SynthConfig::default() },
        SynthConfig { size: 8, ..SynthConfig::default() },
        SynthConfig { num_images: 0, ..SynthConfig::default() },
        SynthConfig { sample_type: SampleType::F32, ..SynthConfig::default() },
        SynthConfig { noise: f32::NAN, ..SynthConfig::default() },
        SynthConfig { test_fraction: 1.5, ..SynthConfig::default() },
        SynthConfig { channels: 5, format: SynthFormat::Png, ..SynthConfig::default() },
    ] {
        assert!(generate_cell(&bad, 0).is_err(), "{bad:?}");
        assert!(write_synthetic_dataset(std::env::temp_dir().join("cellino-synth-never"), &bad).is_err());
    }
    let config = SynthConfig { num_images: 60, sample_type: SampleType::U16, ..SynthConfig::default() };
    let cells = generate_cells(&config).unwrap();
    let mut counts = [0usize; 6];
    for cell in &cells {
        counts[cell.label] += 1;
        assert!(cell.cell_line < config.cell_lines);
        assert!(cell.image.data.iter().all(|&v| (0.0..=65535.0).contains(&v) && v.fract() == 0.0));
        // The cell is bright against the background in every channel, and the range is used.
        for plane in cell.image.channel_planes() {
            let max = plane.iter().copied().fold(0.0f32, f32::max);
            assert!(max > 0.2 * 65535.0, "max {max}");
        }
    }
    assert_eq!(counts, [10; 6]);
    assert!(cells.iter().any(|c| c.split == SynthSplit::Test) && cells.iter().any(|c| c.split == SynthSplit::Train));
}

/// Nearest class centroid on z-scored features: trained on `train`, accuracy on `test`.
fn nearest_centroid_accuracy(train: &[(Vec<f64>, usize)], test: &[(Vec<f64>, usize)], classes: usize) -> f64 {
    let d = train[0].0.len();
    let n = train.len() as f64;
    let mean: Vec<f64> = (0..d).map(|j| train.iter().map(|(f, _)| f[j]).sum::<f64>() / n).collect();
    let std: Vec<f64> = (0..d)
        .map(|j| (train.iter().map(|(f, _)| (f[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt().max(1e-12))
        .collect();
    let z = |f: &[f64]| -> Vec<f64> { (0..d).map(|j| (f[j] - mean[j]) / std[j]).collect() };
    let mut centroids = vec![vec![0.0; d]; classes];
    let mut counts = vec![0.0; classes];
    for (f, y) in train {
        for (c, v) in centroids[*y].iter_mut().zip(z(f)) {
            *c += v;
        }
        counts[*y] += 1.0;
    }
    for (c, n) in centroids.iter_mut().zip(&counts) {
        c.iter_mut().for_each(|v| *v /= n);
    }
    let correct = test
        .iter()
        .filter(|(f, y)| {
            let f = z(f);
            let dist = |c: &Vec<f64>| c.iter().zip(&f).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
            let best = (0..classes).min_by(|&a, &b| dist(&centroids[a]).total_cmp(&dist(&centroids[b]))).unwrap();
            best == *y
        })
        .count();
    correct as f64 / test.len() as f64
}

/// Per-channel mean and standard deviation of the raw values.
fn intensity_features(image: &MultiChannelImage) -> Vec<f64> {
    image
        .channel_planes()
        .flat_map(|p| {
            let n = p.len() as f64;
            let mean = p.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = p.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            [mean, var.sqrt()]
        })
        .collect()
}

/// Otsu's threshold of `values`.
fn otsu(values: &[f64]) -> f64 {
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let bins = 64;
    let width = ((hi - lo) / bins as f64).max(1e-12);
    let mut hist = vec![0.0; bins];
    for &v in values {
        hist[(((v - lo) / width) as usize).min(bins - 1)] += 1.0;
    }
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, h)| i as f64 * h).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0);
    for (t, h) in hist.iter().enumerate() {
        w0 += h;
        sum0 += t as f64 * h;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let between = w0 * w1 * (sum0 / w0 - (sum_all - sum0) / w1).powi(2);
        if between > best {
            (best, best_t) = (between, t);
        }
    }
    lo + (best_t as f64 + 1.0) * width
}

/// Where the protein signal is, from its brightest 3 % and 10 % of pixels ("spots"): which share lies
/// in the nucleus (Otsu mask of channel 0), at the cell's edge (within 2 px of the boundary of the
/// Otsu mask of the other structural channels) or in between; their mean distance from the
/// nucleus centre relative to the cell's radius; and the shape of their connected components
/// (mean size, elongation, count). Only positions are used, never the values themselves.
fn spatial_features(image: &MultiChannelImage, protein: usize) -> Vec<f64> {
    let (c, h, w) = image.shape();
    let plane = |k: usize| -> Vec<f64> { image.channel(k).unwrap().iter().map(|&v| v as f64).collect() };
    let nucleus = plane(0);
    let t = otsu(&nucleus);
    let in_nuc: Vec<bool> = nucleus.iter().map(|&v| v > t).collect();
    let mut structure = vec![0.0; h * w];
    for k in (0..c).filter(|&k| k != protein) {
        let p = plane(k);
        let max = p.iter().copied().fold(1e-9, f64::max);
        structure.iter_mut().zip(&p).for_each(|(s, v)| *s += v / max);
    }
    let t = otsu(&structure);
    let in_cell: Vec<bool> = structure.iter().zip(&in_nuc).map(|(&v, &n)| v > t || n).collect();
    let at = |x: isize, y: isize| x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h;
    let near_edge = |x: usize, y: usize| {
        (-2isize..=2).any(|dy| {
            (-2isize..=2).any(|dx| {
                let (xx, yy) = (x as isize + dx, y as isize + dy);
                !at(xx, yy) || !in_cell[yy as usize * w + xx as usize]
            })
        })
    };
    let cell_area = in_cell.iter().filter(|&&b| b).count().max(1) as f64;
    let r_cell = (cell_area / std::f64::consts::PI).sqrt();
    let nuc_area = in_nuc.iter().filter(|&&b| b).count().max(1) as f64;
    let (mut cx, mut cy) = (0.0, 0.0);
    for (i, _) in in_nuc.iter().enumerate().filter(|(_, b)| **b) {
        cx += (i % w) as f64 / nuc_area;
        cy += (i / w) as f64 / nuc_area;
    }

    let p = plane(protein);
    let mut sorted = p.clone();
    sorted.sort_by(f64::total_cmp);
    let mut features = Vec::new();
    for fraction in [0.03, 0.1] {
        let cut = sorted[((1.0 - fraction) * sorted.len() as f64) as usize];
        let top: Vec<bool> = p.iter().map(|&v| v >= cut).collect();
        let n_top = top.iter().filter(|&&b| b).count().max(1) as f64;
        let (mut nuc, mut edge, mut dist) = (0.0, 0.0, 0.0);
        for y in 0..h {
            for x in 0..w {
                if top[y * w + x] {
                    nuc += in_nuc[y * w + x] as u8 as f64;
                    edge += (in_cell[y * w + x] && near_edge(x, y)) as u8 as f64;
                    dist += ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt() / r_cell;
                }
            }
        }
        // Connected components (4-neighbourhood) of the spots: size and elongation.
        let mut seen = vec![false; h * w];
        let (mut components, mut elongation) = (0.0, 0.0);
        for start in 0..h * w {
            if !top[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            let mut stack = vec![start];
            let mut pts = Vec::new();
            while let Some(i) = stack.pop() {
                pts.push(((i % w) as f64, (i / w) as f64));
                let (x, y) = ((i % w) as isize, (i / w) as isize);
                for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                    let (xx, yy) = (x + dx, y + dy);
                    if at(xx, yy) {
                        let j = yy as usize * w + xx as usize;
                        if top[j] && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            let n = pts.len() as f64;
            let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
            let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
            for &(x, y) in &pts {
                sxx += (x - mx).powi(2) / n;
                syy += (y - my).powi(2) / n;
                sxy += (x - mx) * (y - my) / n;
            }
            let (tr, det) = (sxx + syy, sxx * syy - sxy * sxy);
            let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
            let (l1, l2) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(0.0));
            components += 1.0;
            elongation += n * ((l1 + 0.25) / (l2 + 0.25)).ln();
        }
        features.extend([
            nuc / n_top,
            edge / n_top,
            1.0 - (nuc + edge) / n_top,
            dist / n_top,
            (n_top / components).ln(),
            elongation / n_top,
            components / n_top,
        ]);
    }
    features
}

#[test]
fn classes_differ_in_spatial_pattern_not_in_intensity() {
    let config = SynthConfig { num_images: 600, seed: 3, test_fraction: 0.5, ..SynthConfig::default() };
    let cells = generate_cells(&config).unwrap();
    let protein = config.protein_channel();
    let split = |f: &dyn Fn(&MultiChannelImage) -> Vec<f64>, which: SynthSplit| -> Vec<(Vec<f64>, usize)> {
        cells.iter().filter(|c| c.split == which).map(|c| (f(&c.image), c.label)).collect()
    };
    let intensity = |im: &MultiChannelImage| intensity_features(im);
    let spatial = |im: &MultiChannelImage| spatial_features(im, protein);
    let k = SYNTH_CLASSES.len();
    let acc_intensity =
        nearest_centroid_accuracy(&split(&intensity, SynthSplit::Train), &split(&intensity, SynthSplit::Test), k);
    let acc_spatial =
        nearest_centroid_accuracy(&split(&spatial, SynthSplit::Train), &split(&spatial, SynthSplit::Test), k);
    let chance = 1.0 / k as f64;
    eprintln!("intensity-only accuracy {acc_intensity:.3}, spatial {acc_spatial:.3}, chance {chance:.3}");
    assert!(acc_intensity < chance + 0.15, "intensity-only accuracy {acc_intensity:.3} (chance {chance:.3})");
    assert!(acc_spatial > 0.6, "spatial accuracy {acc_spatial:.3}");
}

/// Throughput of the generator (run with `cargo test --release -p cellino-data --test
/// synth_generator -- --ignored --nocapture`).
#[test]
#[ignore]
fn generation_throughput() {
    let config = SynthConfig { num_images: 4000, ..SynthConfig::default() };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let t = std::time::Instant::now();
    let cells = pool.install(|| generate_cells(&config)).unwrap();
    let single = cells.len() as f64 / t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let cells = generate_cells(&config).unwrap();
    let parallel = cells.len() as f64 / t.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    write_synthetic_dataset(dir.path(), &config).unwrap();
    let written = config.num_images as f64 / t.elapsed().as_secs_f64();
    let threads = rayon::current_num_threads();
    eprintln!(
        "64x64x4 u8: {single:.0} crops/s on 1 thread, {parallel:.0} crops/s on {threads} threads, \
         {written:.0} crops/s generated + written as PNG on {threads} threads"
    );
    assert!(single > 1000.0 || cfg!(debug_assertions), "{single:.0} crops/s");
}
