//! dinov2's `CosineScheduler` and the schedules of a run (`dinov2/train/train.py`).

/// `[freeze zeros] + linspace(start, base, warmup) + cosine(base → final)`; `final` from `total` on.
#[derive(Debug, Clone, PartialEq)]
pub struct CosineScheduler {
    pub schedule: Vec<f64>,
    pub final_value: f64,
}

impl CosineScheduler {
    /// Like numpy: the warm-up is `linspace(start, base, warmup)` with both ends included, the
    /// cosine runs `final + ½(base − final)(1 + cos(π i / L))` for `i < L = total − warmup − freeze`.
    /// Lengths that do not add up (warmup + freeze > total) give `None`.
    pub fn new(
        base_value: f64,
        final_value: f64,
        total_iters: usize,
        warmup_iters: usize,
        start_warmup_value: f64,
        freeze_iters: usize,
    ) -> Option<Self> {
        let rest = total_iters.checked_sub(warmup_iters + freeze_iters)?;
        let mut schedule = vec![0.0; freeze_iters];
        schedule.extend(linspace(start_warmup_value, base_value, warmup_iters));
        schedule.extend((0..rest).map(|i| {
            final_value
                + 0.5 * (base_value - final_value) * (1.0 + (std::f64::consts::PI * i as f64 / rest as f64).cos())
        }));
        Some(Self { schedule, final_value })
    }

    /// The value at 0-based iteration `it` (`final_value` past the end).
    pub fn get(&self, it: u64) -> f64 {
        usize::try_from(it).ok().and_then(|i| self.schedule.get(i)).copied().unwrap_or(self.final_value)
    }
}

/// numpy's `linspace(start, stop, n)` (endpoint included; the last value is exactly `stop`).
pub fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![start],
        _ => {
            let step = (stop - start) / (n - 1) as f64;
            let mut v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
            v[n - 1] = stop;
            v
        }
    }
}

/// All schedules of a run, read at the 0-based iteration before the step.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedules {
    pub lr: CosineScheduler,
    pub last_layer_lr: CosineScheduler,
    pub wd: CosineScheduler,
    pub momentum: CosineScheduler,
    pub teacher_temp: CosineScheduler,
}

/// One iteration's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleValues {
    pub lr: f64,
    pub last_layer_lr: f64,
    pub wd: f64,
    pub momentum: f64,
    pub teacher_temp: f64,
}

impl Schedules {
    pub fn at(&self, it: u64) -> ScheduleValues {
        ScheduleValues {
            lr: self.lr.get(it),
            last_layer_lr: self.last_layer_lr.get(it),
            wd: self.wd.get(it),
            momentum: self.momentum.get(it),
            teacher_temp: self.teacher_temp.get(it),
        }
    }
}
