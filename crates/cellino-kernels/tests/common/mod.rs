//! Device-parametrised parity tests: `test_device!` runs one body on the CPU and, with the `cuda`
//! feature, on the GPU.
//!
//! On the CPU a parity check compares the fused op with its candle composite, at the tolerance the
//! test states. On a GPU the same check compares the device result with the CPU result of the same
//! op, at the per-dtype thresholds of [`device_tolerance`] (the only place they are stated).

use candle_core::{DType, Device};

/// Where a `test_device!` body runs.
pub enum On {
    Cpu,
    #[allow(dead_code)] // built only with the `cuda` feature
    Gpu(Device),
}

/// (forward, gradient) thresholds of a GPU result against the CPU result, relative as in
/// `assert_close`: `max |gpu − cpu| ≤ tol · max(1, max |cpu|)`. Different reduction orders (and,
/// for half precision, the unit roundoff: bf16 3.9e-3, f16 4.9e-4) set them.
pub fn device_tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F64 => (1e-10, 1e-9),
        DType::F32 => (1e-4, 1e-3),
        DType::F16 => (4e-3, 1e-2),
        DType::BF16 => (3e-2, 6e-2),
        other => panic!("no device tolerance for {other:?}"),
    }
}

/// `test_device!(fn name(dev) { … })` expands to a module `name` with the test `name::cpu` and,
/// with the `cuda` feature, `name::cuda` (`paste`-style `name_cpu` identifiers would need a new
/// crate). The CUDA test returns early with a message when no GPU is present at run time, so
/// `--features cuda` test binaries pass on machines without one.
macro_rules! test_device {
    ($(#[$meta:meta])* fn $name:ident($dev:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($dev: &$crate::common::On) $body

            #[test]
            $(#[$meta])*
            fn cpu() {
                run(&$crate::common::On::Cpu)
            }

            #[cfg(feature = "cuda")]
            #[test]
            $(#[$meta])*
            fn cuda() {
                match candle_core::Device::new_cuda(0) {
                    Ok(gpu) => run(&$crate::common::On::Gpu(gpu)),
                    Err(e) => {
                        // The driver's message may span lines; the first one names the cause.
                        let why = e.to_string().lines().next().unwrap_or_default().to_string();
                        eprintln!("skipped {}: no CUDA device: {why}", module_path!());
                    }
                }
            }
        }
    };
}
