//! Config schema: defaults, shipped recipes, overrides, unknown keys, impossible combinations.

use std::path::PathBuf;

use cellino_ssl::{SslConfig, SslError};

fn configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

#[test]
fn shipped_default_config_equals_the_built_in_defaults() {
    let path = configs().join("ssl_default_config.yaml");
    if std::env::var("CELLINO_WRITE_DEFAULT_CONFIG").is_ok() {
        let header = "# dinov2 ssl_default_config.yaml (the subset cellino implements, plus cellino keys marked in\n\
                      # crates/cellino-ssl/src/config.rs). Every training config is merged onto these values.\n";
        std::fs::write(&path, format!("{header}{}", SslConfig::default().to_yaml().unwrap())).unwrap();
    }
    let parsed = SslConfig::from_yaml_file(&path).unwrap();
    assert_eq!(parsed, SslConfig::default());
    assert_eq!(SslConfig::from_yaml_str("", "empty").unwrap(), SslConfig::default());
}

#[test]
fn published_recipes_have_the_spec_values() {
    let load = |n: &str| SslConfig::from_yaml_file(configs().join("train").join(n)).unwrap();
    for (name, el, chans, epochs, eval) in [
        ("cell_dino_vitl16_hpaone.yaml", 1756, 4, 100, 9000),
        ("cell_dino_vitl16_hpafov.yaml", 450, 4, 100, 9000),
        ("cell_dino_vitl16_boc_hpafov.yaml", 450, 1, 400, 12500),
    ] {
        let c = load(name);
        c.validate().unwrap();
        assert_eq!(c.train.batch_size_per_gpu, 16, "{name}");
        assert_eq!(c.train.official_epoch_length, el, "{name}");
        assert!(c.train.cell_augmentation);
        assert_eq!((c.student.in_chans, c.teacher.in_chans), (chans, chans), "{name}");
        assert_eq!((c.student.arch.as_str(), c.student.patch_size), ("vit_large", 16));
        assert_eq!((c.student.drop_path_rate, c.student.block_chunks), (0.1, 4));
        assert_eq!((c.teacher.momentum_teacher, c.teacher.warmup_teacher_temp_epochs), (0.996, 20));
        assert_eq!((c.optim.epochs, c.optim.base_lr, c.optim.warmup_epochs), (epochs, 5e-4, 20));
        assert_eq!(c.optim.weight_decay_end, 0.2);
        assert_eq!((c.crops.global_crops_scale, c.crops.local_crops_scale), ((0.4, 1.0), (0.005, 0.4)));
        assert_eq!((c.crops.local_crops_number, c.crops.global_crops_size, c.crops.local_crops_size), (8, 224, 96));
        assert_eq!(c.evaluation.eval_period_iterations, eval);
        // Unchanged defaults.
        assert_eq!((c.dino.head_n_prototypes, c.dino.koleo_loss_weight, c.optim.clip_grad), (65536, 0.1, 3.0));
        // The documented 32-GPU run: global batch 512 → lr 3.536e-4.
        let g = c.with_overrides(&["train.batch_size_per_gpu=512"]).unwrap();
        assert!((g.scaled_lr().unwrap() - 3.5355e-4).abs() < 1e-7);
    }
    let tiny = load("tiny_cpu_boc.yaml");
    tiny.validate().unwrap();
    let v = tiny.vit_config().unwrap();
    assert_eq!((v.embed_dim, v.depth, v.in_chans, v.pos_grid), (64, 2, 1, 4));
}

#[test]
fn overrides_set_values_and_reject_unknown_keys() {
    let c = SslConfig::default()
        .with_overrides(&["optim.base_lr=1e-3", "crops.global_crops_scale=[0.5, 1.0]", "train.OFFICIAL_EPOCH_LENGTH=7"])
        .unwrap();
    assert_eq!((c.optim.base_lr, c.crops.global_crops_scale, c.train.official_epoch_length), (1e-3, (0.5, 1.0), 7));
    let err = SslConfig::default().with_overrides(&["optim.base_lrr=1"]).unwrap_err().to_string();
    assert!(err.contains("unknown key `optim.base_lrr`"), "{err}");
    let err = SslConfig::default().with_overrides(&["optim=1"]).unwrap_err();
    assert!(matches!(err, SslError::Config { .. }), "{err}");
    let err = SslConfig::default().with_overrides(&["optim.epochs=many"]).unwrap_err().to_string();
    assert!(err.contains("epochs") || err.contains("invalid type"), "{err}");
    assert!(SslConfig::default().with_overrides(&["no_equals_sign"]).is_err());
}

#[test]
fn unknown_keys_and_wrong_types_name_key_line_and_column() {
    let err = SslConfig::from_yaml_str("train:\n  batch_size_per_gpu: 8\n  bach_size: 3\n", "x.yaml").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bach_size") && msg.contains("line 3") && msg.contains("x.yaml"), "{msg}");
    let msg = SslConfig::from_yaml_str("optim:\n  epochs: ten\n", "y.yaml").unwrap_err().to_string();
    assert!(msg.contains("optim.epochs") && msg.contains("line 2"), "{msg}");
    let msg = SslConfig::from_yaml_str("compute_precision:\n  grad_scaler: true\n", "z.yaml").unwrap_err().to_string();
    assert!(msg.contains("compute_precision"), "{msg}");
}

#[test]
fn impossible_combinations_are_refused_before_training() {
    let tiny = |ov: &[&str]| {
        SslConfig::from_yaml_file(configs().join("train/tiny_cpu_boc.yaml")).unwrap().with_overrides(ov).unwrap()
    };
    let msg = tiny(&["crops.local_crops_size=12"]).validate().unwrap_err().to_string();
    assert!(msg.contains("local_crops_size 12 is not divisible by student.patch_size 8"), "{msg}");
    let msg = tiny(&["train.batch_size_per_gpu=1"]).validate().unwrap_err().to_string();
    assert!(msg.contains("KoLeo"), "{msg}");
    tiny(&["train.batch_size_per_gpu=1", "dino.koleo_loss_weight=0"]).validate().unwrap();
    let msg = tiny(&["teacher.in_chans=4"]).validate().unwrap_err().to_string();
    assert!(msg.contains("teacher.in_chans 4"), "{msg}");
    let msg = tiny(&["train.centering=sometimes"]).validate().unwrap_err().to_string();
    assert!(msg.contains("train.centering"), "{msg}");
    assert!(tiny(&["student.arch=vit_tiny"]).validate().is_err());
}
