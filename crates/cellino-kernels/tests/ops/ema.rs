use candle_core::{DType, Tensor};
use cellino_kernels::{ema_update, ema_update_composite, ema_update_in_place};

use crate::*;

fn pairs(dtype: DType) -> (Vec<Tensor>, Vec<Tensor>) {
    let mut r = rng(1);
    let shapes: [&[usize]; 5] = [&[1], &[3, 7], &[384, 1536], &[200_001], &[2, 1, 5]];
    let t = shapes.iter().map(|s| uniform(&mut r, s, 1.0, dtype)).collect();
    let s = shapes.iter().map(|s| uniform(&mut r, s, 1.0, dtype)).collect();
    (t, s)
}

#[test]
fn returning_and_in_place_updates_match_composite() {
    for (dtype, tol) in [(DType::F32, 1e-7), (DType::F64, 1e-15)] {
        let (teacher, student) = pairs(dtype);
        let expected = ema_update_composite(&teacher, &student, 0.996).unwrap();
        let fresh = ema_update(&teacher, &student, 0.996).unwrap();
        for (a, b) in fresh.iter().zip(&expected) {
            assert_close(a, b, tol, "ema_update");
        }
        let before: Vec<Tensor> = teacher.iter().map(|t| t.copy().unwrap()).collect();
        ema_update_in_place(&teacher, &student, 0.996).unwrap();
        for ((a, b), old) in teacher.iter().zip(&expected).zip(&before) {
            assert_close(a, b, tol, "ema_update_in_place");
            assert!(max_abs_diff(a, old) > 0.0, "teacher unchanged");
        }
    }
}

#[test]
fn half_precision_updates_in_place_through_the_composite() {
    let (teacher, student) = pairs(DType::F32);
    let t16: Vec<Tensor> = teacher.iter().map(|t| t.to_dtype(DType::BF16).unwrap()).collect();
    let s16: Vec<Tensor> = student.iter().map(|t| t.to_dtype(DType::BF16).unwrap()).collect();
    ema_update_in_place(&t16, &s16, 0.5).unwrap();
    let expected = ema_update_composite(&teacher, &student, 0.5).unwrap();
    for (a, b) in t16.iter().zip(&expected) {
        assert_close(a, b, 1e-2, "bf16 ema");
    }
}

#[test]
fn teachers_sharing_the_student_buffer_are_refused() {
    let (_, student) = pairs(DType::F32);
    let aliased: Vec<Tensor> = student.iter().map(|s| s.detach()).collect();
    assert!(ema_update_in_place(&aliased, &student, 0.9).is_err());
}

#[test]
fn mismatches_are_errors() {
    let (teacher, student) = pairs(DType::F32);
    assert!(ema_update(&teacher[..2], &student, 0.9).is_err());
    assert!(ema_update(&teacher, &student, 1.5).is_err());
    let mut wrong = student.clone();
    wrong[1] = wrong[1].t().unwrap();
    let err = ema_update_in_place(&teacher, &wrong, 0.9).unwrap_err().to_string();
    assert!(err.contains("pair 1") && err.contains("[3, 7]"), "{err}");
}
