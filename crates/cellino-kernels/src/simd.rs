//! Runtime CPU-feature dispatch for the element-wise kernels.
//!
//! The crate is compiled for baseline x86-64 (SSE2), so loops written in plain Rust vectorise to
//! 4 f32 lanes and `mul_add` becomes a libm call. [`multiversion!`] compiles a kernel a second
//! time with AVX2 + FMA enabled and picks that copy when the CPU has them. AVX-512 is left to
//! `gemm` (which dispatches itself): `avx512f` target features need Rust 1.89, above our MSRV.

/// Whether the running CPU has AVX2 and FMA (cached by the std macro).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Define a generic kernel `fn name<T: Real>(args)` that runs an AVX2 + FMA build of its body on
/// CPUs that support it and the baseline build elsewhere. Helpers called from the body must be
/// `#[inline(always)]` so that they are compiled into the fast copy too.
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident<T: Real>($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name<T: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn inner<T: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast<T: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? {
                    inner($($arg),*)
                }
                if $crate::simd::avx2_fma() {
                    // SAFETY: `fast` only needs AVX2 and FMA, which the running CPU has.
                    return unsafe { fast($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}

pub(crate) use multiversion;
