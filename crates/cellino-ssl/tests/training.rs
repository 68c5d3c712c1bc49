//! End-to-end training on synthetic cells: learning without collapse, exact resume, export, guards.

mod common;

use candle_core::{DType, Device, Tensor};
use cellino_data::Cursor;
use cellino_ssl::{CheckpointPolicy, SslConfig, SslError, SslTrainer, StepMetrics, list_checkpoints, train};
use common::{tiny_config, tiny_loader};

fn run(
    trainer: &mut SslTrainer,
    loader_n: usize,
    cursor: Cursor,
    until: u64,
    ck: Option<&CheckpointPolicy>,
) -> (Vec<StepMetrics>, Cursor) {
    let loader = tiny_loader(&trainer.config, loader_n);
    let mut out = vec![];
    let c = train(trainer, &loader, cursor, until, ck, |m| out.push(m.clone())).unwrap();
    (out, c)
}

#[test]
fn loss_decreases_without_collapse() {
    let config = tiny_config(&["train.seed=3", "teacher.momentum_teacher=0.95", "student.layerscale=0.1"]);
    let mut trainer = SslTrainer::new(config, &Device::Cpu).unwrap();
    let t0 = std::time::Instant::now();
    let (m, _) = run(&mut trainer, 64, Cursor::default(), 30, None);
    let per_step = t0.elapsed().as_secs_f64() / 30.0;
    let first: f64 = m[..5].iter().map(|m| m.total_loss).sum::<f64>() / 5.0;
    let last: f64 = m[25..].iter().map(|m| m.total_loss).sum::<f64>() / 5.0;
    for x in &m {
        eprintln!(
            "it {:2} loss {:.4} (local {:.4} global {:.4} koleo {:.4} ibot {:.4}) H {:.3} Hmarg {:.3} std {:.4} gn {:.3}/{:.3}",
            x.iteration,
            x.total_loss,
            x.dino_local_crops_loss,
            x.dino_global_crops_loss,
            x.koleo_loss,
            x.ibot_loss,
            x.teacher_entropy,
            x.teacher_marginal_entropy,
            x.embedding_std,
            x.grad_norm_backbone,
            x.grad_norm_head
        );
    }
    let ips = m.iter().map(|m| m.images_per_second).sum::<f64>() / m.len() as f64;
    eprintln!("first {first:.4} last {last:.4}, {per_step:.3} s/step, {ips:.1} images/s");
    assert!(ips > 0.0);
    assert!(last < first, "loss did not decrease: {first} -> {last}");
    // No collapse: teacher targets never concentrate on a few prototypes (a collapsed teacher has
    // entropy near 0; uniform is ln K) and the student embeddings keep spreading.
    let k = trainer.head_config.n_prototypes as f64;
    for x in &m {
        assert!(x.teacher_entropy > 0.3 * k.ln(), "teacher collapse at {}: {}", x.iteration, x.teacher_entropy);
    }
    assert!(m[29].embedding_std > m[0].embedding_std, "student embeddings collapsed");
    assert!(per_step < 1.0, "tiny step took {per_step} s");
}

/// 2N iterations in one run (checkpoint period 100) against N, checkpoint, drop everything,
/// resume, N more (period N): losses, student, teacher and the final cursor bit for bit.
fn check_resume(config: &SslConfig, n: u64, loader_n: usize) -> (SslTrainer, tempfile::TempDir, tempfile::TempDir) {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let pol_a = CheckpointPolicy { dir: dir_a.path().into(), period: 100, keep: 2 };
    let mut a = SslTrainer::new(config.clone(), &Device::Cpu).unwrap();
    let (ma, ca) = run(&mut a, loader_n, Cursor::default(), 2 * n, Some(&pol_a));
    let pol_b = CheckpointPolicy { dir: dir_b.path().into(), period: n, keep: 2 };
    let mut b = SslTrainer::new(config.clone(), &Device::Cpu).unwrap();
    let (mb1, _) = run(&mut b, loader_n, Cursor::default(), n, Some(&pol_b));
    drop(b);
    let ck = cellino_ssl::latest_checkpoint(dir_b.path()).unwrap().unwrap();
    let (mut b, cursor) = SslTrainer::load_checkpoint(&ck, &Device::Cpu).unwrap();
    assert_eq!(b.iteration, n);
    let (mb2, cb) = run(&mut b, loader_n, cursor, 2 * n, Some(&pol_b));
    assert_eq!(ca, cb, "data cursor differs after resume");
    let la: Vec<u64> = ma.iter().map(|m| m.total_loss.to_bits()).collect();
    let lb: Vec<u64> = mb1.iter().chain(&mb2).map(|m| m.total_loss.to_bits()).collect();
    assert_eq!(la.len(), 2 * n as usize);
    assert_eq!(la, lb, "losses differ after resume");
    for (what, ta, tb) in [
        ("student", a.student_tensors(), b.student_tensors()),
        ("teacher", a.teacher_tensors().clone(), b.teacher_tensors().clone()),
    ] {
        for (k, x) in &ta {
            let (x, y): (Vec<f32>, Vec<f32>) =
                (x.flatten_all().unwrap().to_vec1().unwrap(), tb[k].flatten_all().unwrap().to_vec1().unwrap());
            assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{what} {k} differs after resume");
        }
    }
    (a, dir_a, dir_b)
}

#[test]
fn resume_is_bit_identical() {
    let (a, dir_a, dir_b) = check_resume(&tiny_config(&["train.seed=5"]), 3, 24);
    // Keep-last-N pruning: periods at 3 and 6 in b → both kept with keep 2; a has only the final one.
    assert_eq!(list_checkpoints(dir_b.path()).unwrap().iter().map(|c| c.0).collect::<Vec<_>>(), vec![3, 6]);
    assert_eq!(list_checkpoints(dir_a.path()).unwrap().len(), 1);

    // Export of the teacher in dinov2 key layout loads as a backbone.
    let export = dir_a.path().join("teacher.safetensors");
    a.export_teacher(&export).unwrap();
    let names = candle_core::safetensors::load(&export, &Device::Cpu).unwrap();
    assert!(names.contains_key("backbone.cls_token") && names.contains_key("dino_head.last_layer.weight_g"));
    let model = cellino_vit::DinoVisionTransformer::load(
        &export,
        None,
        Some(a.vit_config.num_heads),
        a.vit_config.interpolation,
    )
    .unwrap();
    let x = Tensor::ones((1, 1, 32, 32), DType::F32, &Device::Cpu).unwrap();
    let want = a.teacher_backbone().forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let got = model.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(want, got);
}

/// With 2 loader batches per iteration (3 batches per epoch, so iterations straddle epochs and
/// the checkpoint at N = 3 falls mid-epoch): N + resume + N == 2N bit for bit.
#[test]
fn resume_with_gradient_accumulation_is_bit_identical() {
    let config = tiny_config(&["train.seed=6", "train.grad_accumulation_steps=2"]);
    let (a, _da, _db) = check_resume(&config, 3, 24);
    assert_eq!(a.iteration, 6);
    assert_eq!(a.optimizer().state["backbone.cls_token"].step, 6, "one AdamW step per iteration");
}

#[test]
fn kill_during_write_leaves_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(&[]);
    let mut t = SslTrainer::new(config, &Device::Cpu).unwrap();
    let p = CheckpointPolicy { dir: dir.path().into(), period: 1, keep: 3 };
    run(&mut t, 16, Cursor::default(), 1, Some(&p));
    // A torn write of the next checkpoint: tensors half written, no sidecar.
    let (st, _) = cellino_ssl::checkpoint_paths(dir.path(), 2);
    std::fs::write(&st, b"garbage").unwrap();
    std::fs::write(dir.path().join("model_0000002.safetensors.tmp123"), b"partial").unwrap();
    let latest = cellino_ssl::latest_checkpoint(dir.path()).unwrap().unwrap();
    let (t2, _) = SslTrainer::load_checkpoint(&latest, &Device::Cpu).unwrap();
    assert_eq!(t2.iteration, 1);
}

#[test]
fn non_finite_loss_aborts_naming_iteration_and_checkpoint() {
    let config = tiny_config(&[]);
    let mut t = SslTrainer::new(config, &Device::Cpu).unwrap();
    let g = Tensor::full(f32::NAN, (16, 1, 32, 32), &Device::Cpu).unwrap();
    let err = t.step_tensors(&g, None, None, "/ck/model_0000050.safetensors").unwrap_err();
    match &err {
        SslError::NonFinite { iteration, last_checkpoint, .. } => {
            assert_eq!(*iteration, 0);
            assert!(last_checkpoint.contains("model_0000050"));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(t.iteration, 0);
}

#[test]
fn bad_batches_are_refused() {
    let mut t = SslTrainer::new(tiny_config(&[]), &Device::Cpu).unwrap();
    let wrong_c = Tensor::zeros((4, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
    assert!(t.step_tensors(&wrong_c, None, None, "none").unwrap_err().to_string().contains("in_chans"));
    let one = Tensor::zeros((2, 1, 32, 32), DType::F32, &Device::Cpu).unwrap();
    assert!(t.step_tensors(&one, None, None, "none").unwrap_err().to_string().contains("KoLeo"));
}

#[test]
fn every_student_parameter_gets_a_gradient_and_moves() {
    let mut t = SslTrainer::new(tiny_config(&["optim.warmup_epochs=0"]), &Device::Cpu).unwrap();
    let before: std::collections::BTreeMap<String, Tensor> =
        t.student_tensors().into_iter().map(|(k, v)| (k, v.copy().unwrap())).collect();
    run(&mut t, 16, Cursor::default(), 1, None);
    let after = t.student_tensors();
    for (k, x) in &before {
        let d = (x - &after[k]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        // The last layer is frozen only when freeze_last_layer_epochs > 0 (0 in the tiny config).
        assert!(d > 0.0, "{k} did not change");
    }
    assert_eq!(t.optimizer().state.len(), before.len());
}

#[test]
fn sinkhorn_centering_steps_and_last_layer_freeze_holds() {
    let config = tiny_config(&["train.centering=sinkhorn_knopp", "optim.freeze_last_layer_epochs=1"]);
    let mut t = SslTrainer::new(config, &Device::Cpu).unwrap();
    let g0 = t.student_tensors()["dino_head.last_layer.weight_v"].copy().unwrap();
    let (m, _) = run(&mut t, 16, Cursor::default(), 2, None);
    assert!(m.iter().all(|m| m.total_loss.is_finite() && m.last_layer_lr == 0.0));
    // Frozen (lr 0): the prototypes do not move, but their moments are updated.
    let g1 = t.student_tensors()["dino_head.last_layer.weight_v"].copy().unwrap();
    assert_eq!(g0.to_vec2::<f32>().unwrap(), g1.to_vec2::<f32>().unwrap());
    assert_eq!(t.optimizer().state["dino_head.last_layer.weight_v"].step, 2);
    // Sinkhorn does not touch the EMA centers.
    assert_eq!(t.teacher_tensors().len(), t.student_tensors().len());
    let c = cellino_ssl::CheckpointPolicy::from_config(&t.config);
    assert_eq!(c.period, 50);
}
