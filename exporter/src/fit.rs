//! Linear forecasters trained on the device, in closed form: `kinglet-export fit`.
//!
//! Every family here is linear in the normalized history window, so training is one ridge
//! least-squares solve. One pass over the training windows accumulates, batch by batch, the
//! Gram matrix of `z = [window; 1]` and its cross products with the targets, so memory is set
//! by the window size, not by the length of the CSV. Each family is a fixed linear map of `z`
//! (NLinear subtracts the window's last value, DLinear splits it into a moving-average trend
//! and the seasonal rest), so its normal equations are those statistics seen through the map.
//! The ridge λ is chosen by the validation windows' MSE, computed from their own statistics for
//! every λ of a grid, with no second pass. The fitted map is one matrix and a bias: the graph is
//! one `EinSum` and an add, quantizable to int8 like any imported matmul.

use crate::error::{ExportError, Result};
use crate::forecast::Normalization;
use kinglet_runtime::series::Series;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::ops::math;

/// How the window becomes features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The window as it is (ridge regression on the history).
    Linear,
    /// The window minus its last value, which is added back to the forecast (Zeng et al. 2023).
    NLinear,
    /// Trend (moving average) and seasonal (the rest) parts, each with its own weights
    /// (Zeng et al. 2023).
    DLinear,
}

impl Family {
    /// Name on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Family::Linear => "linear",
            Family::NLinear => "nlinear",
            Family::DLinear => "dlinear",
        }
    }
}

impl std::str::FromStr for Family {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Family> {
        match s {
            "linear" | "ridge" => Ok(Family::Linear),
            "nlinear" => Ok(Family::NLinear),
            "dlinear" => Ok(Family::DLinear),
            other => Err(ExportError::Unsupported(format!(
                "family `{other}` (linear, nlinear, dlinear)"
            ))),
        }
    }
}

/// What `fit` was asked for.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Feature map.
    pub family: Family,
    /// With every column a target: one set of weights per column instead of one shared.
    pub individual: bool,
    /// DLinear's moving-average length (odd).
    pub moving_average: usize,
    /// Data rows `[start, end)` whose windows train.
    pub train: (usize, usize),
    /// Data rows `[start, end)` whose windows choose λ.
    pub valid: (usize, usize),
    /// Ridge strengths to try (per window, on normalized data).
    pub lambdas: Vec<f64>,
}

/// The ridge strengths tried by default. The largest ones shrink the weights towards zero: the
/// forecast then tends to the mean (linear, DLinear) or to the last value (NLinear), which is
/// what validation should pick on a random walk.
pub const DEFAULT_LAMBDAS: [f64; 12] = [
    1e-6, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1e4,
];

/// Validation error of one λ.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LambdaScore {
    /// Ridge strength.
    pub lambda: f64,
    /// Validation MSE (normalized), `None` when the system was singular.
    pub valid_mse: Option<f64>,
}

/// What fitting did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FitReport {
    /// Feature map.
    pub family: &'static str,
    /// `shared`, `individual` or `target`.
    pub channels: &'static str,
    /// Features per window, bias included.
    pub features: usize,
    /// Training windows.
    pub train_windows: usize,
    /// Validation windows.
    pub valid_windows: usize,
    /// Least-squares samples per window: the number of columns when they share weights, else 1.
    pub samples_per_window: usize,
    /// Every λ tried.
    pub lambdas: Vec<LambdaScore>,
    /// The one kept.
    pub lambda: f64,
    /// Its validation MSE (normalized).
    pub valid_mse: f64,
    /// Time spent accumulating and solving.
    pub fit_ms: u64,
}

/// How the columns map to problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channels {
    /// Every column is a target, all share one weight set (each column a sample).
    Shared,
    /// Every column is a target with its own weights.
    Individual,
    /// One target column, predicted from the windows of every column.
    Target(usize),
}

/// Fits a linear forecaster on `series` (columns `norm.columns`) and returns its f32 graph
/// (normalized `[1, lookback, columns]` in, `[1, horizon, targets]` out) and the report.
pub fn fit_linear(
    series: &Series,
    norm: &Normalization,
    options: &FitOptions,
) -> Result<(TypedModel, FitReport)> {
    let started = std::time::Instant::now();
    let (l, h, c) = (norm.lookback, norm.horizon, norm.columns.len());
    let channels = if norm.targets.len() == c && c > 0 {
        if options.individual {
            Channels::Individual
        } else {
            Channels::Shared
        }
    } else {
        let t = norm
            .columns
            .iter()
            .position(|name| *name == norm.targets[0])
            .ok_or_else(|| ExportError::Unsupported("the target is not a column".into()))?;
        Channels::Target(t)
    };
    if options.family == Family::DLinear && options.moving_average.is_multiple_of(2) {
        return Err(ExportError::Unsupported(format!(
            "--moving-average {} must be odd",
            options.moving_average
        )));
    }
    if options.family == Family::NLinear && l < 2 {
        return Err(ExportError::Unsupported(
            "nlinear needs a lookback of at least 2".into(),
        ));
    }
    for (what, (a, b)) in [("training", options.train), ("validation", options.valid)] {
        if b > series.rows() || a + l + h > b {
            return Err(ExportError::Unsupported(format!(
                "{what} rows {a}..{b} hold no window of {l} + {h} rows (the CSV has {} rows)",
                series.rows()
            )));
        }
    }
    let blocks = match channels {
        Channels::Target(_) => c,
        _ => 1,
    };
    let z_len = blocks * l + 1;
    let problems = match channels {
        Channels::Individual => c,
        _ => 1,
    };
    let normalized: Vec<f64> = series
        .values
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 - norm.mean[i % c] as f64) / norm.std[i % c] as f64)
        .collect();
    let accumulate = |(a, b): (usize, usize)| -> Vec<Moments> {
        let mut moments: Vec<Moments> = (0..problems).map(|_| Moments::new(z_len, h)).collect();
        let (mut z, mut y) = (vec![0f64; z_len], vec![0f64; h]);
        z[z_len - 1] = 1.0;
        for s in a..=b - l - h {
            let at = |row: usize, col: usize| normalized[row * c + col];
            match channels {
                Channels::Shared | Channels::Individual => {
                    for col in 0..c {
                        for (i, zi) in z[..l].iter_mut().enumerate() {
                            *zi = at(s + i, col);
                        }
                        for (k, yk) in y.iter_mut().enumerate() {
                            *yk = at(s + l + k, col);
                        }
                        let p = if channels == Channels::Individual {
                            col
                        } else {
                            0
                        };
                        moments[p].push(&z, &y);
                    }
                }
                Channels::Target(t) => {
                    for col in 0..c {
                        for i in 0..l {
                            z[col * l + i] = at(s + i, col);
                        }
                    }
                    for (k, yk) in y.iter_mut().enumerate() {
                        *yk = at(s + l + k, t);
                    }
                    moments[0].push(&z, &y);
                }
            }
        }
        moments.iter_mut().for_each(Moments::finish);
        moments
    };
    crate::progress::stage("accumulating the training windows");
    let train = accumulate(options.train);
    let valid = accumulate(options.valid);
    let target_block = match channels {
        Channels::Target(t) => t,
        _ => 0,
    };
    let map = FeatureMap::new(
        options.family,
        blocks,
        l,
        options.moving_average,
        target_block,
    );

    crate::progress::stage("solving the normal equations");
    let mut scores = Vec::new();
    let mut best: Option<(f64, f64, Vec<Vec<f64>>)> = None;
    for &lambda in &options.lambdas {
        let mut weights = Vec::with_capacity(problems);
        let (mut sse, mut n) = (0f64, 0usize);
        for (tr, va) in train.iter().zip(&valid) {
            let Some(w) = map.solve(tr, lambda, h) else {
                break;
            };
            sse += va.sse(&w, h);
            n += va.n * h;
            weights.push(w);
        }
        let mse = (weights.len() == problems).then(|| sse / n.max(1) as f64);
        scores.push(LambdaScore {
            lambda,
            valid_mse: mse,
        });
        if let Some(mse) = mse {
            if best.as_ref().is_none_or(|(_, m, _)| mse < *m) {
                best = Some((lambda, mse, weights));
            }
        }
    }
    let Some((lambda, valid_mse, weights)) = best else {
        return Err(ExportError::Unsupported(
            "the normal equations are singular for every λ tried (constant columns?)".into(),
        ));
    };
    let model = build_graph(&weights, channels, l, h, c).map_err(ExportError::graph)?;
    let report = FitReport {
        family: options.family.name(),
        channels: match channels {
            Channels::Shared => "shared",
            Channels::Individual => "individual",
            Channels::Target(_) => "target",
        },
        features: map.rows.len(),
        train_windows: options.train.1 - options.train.0 - l - h + 1,
        valid_windows: options.valid.1 - options.valid.0 - l - h + 1,
        samples_per_window: if channels == Channels::Shared { c } else { 1 },
        lambdas: scores,
        lambda,
        valid_mse,
        fit_ms: started.elapsed().as_millis() as u64,
    };
    Ok((model, report))
}

/// Samples per batch: the Gram update is a product of `z_len × BATCH` blocks.
const BATCH: usize = 64;

/// Sums over samples of `z zᵀ`, `z yᵀ` and `yᵀy`.
struct Moments {
    z_len: usize,
    h: usize,
    /// `z_len × z_len`, symmetric.
    zz: Vec<f64>,
    /// `z_len × h`.
    zy: Vec<f64>,
    yy: f64,
    n: usize,
    /// Pending samples, feature-major (`z_len × BATCH`, `h × BATCH`).
    bz: Vec<f64>,
    by: Vec<f64>,
    fill: usize,
}

impl Moments {
    fn new(z_len: usize, h: usize) -> Moments {
        Moments {
            z_len,
            h,
            zz: vec![0.0; z_len * z_len],
            zy: vec![0.0; z_len * h],
            yy: 0.0,
            n: 0,
            bz: vec![0.0; z_len * BATCH],
            by: vec![0.0; h * BATCH],
            fill: 0,
        }
    }

    fn push(&mut self, z: &[f64], y: &[f64]) {
        for (i, &v) in z.iter().enumerate() {
            self.bz[i * BATCH + self.fill] = v;
        }
        for (k, &v) in y.iter().enumerate() {
            self.by[k * BATCH + self.fill] = v;
        }
        self.fill += 1;
        if self.fill == BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let (m, zl, h) = (self.fill, self.z_len, self.h);
        fn row(buf: &[f64], i: usize, m: usize) -> &[f64] {
            &buf[i * BATCH..i * BATCH + m]
        }
        for i in 0..zl {
            let zi = row(&self.bz, i, m);
            for j in i..zl {
                self.zz[i * zl + j] += dot(zi, row(&self.bz, j, m));
            }
            for k in 0..h {
                self.zy[i * h + k] += dot(zi, row(&self.by, k, m));
            }
        }
        for k in 0..h {
            let yk = row(&self.by, k, m);
            self.yy += dot(yk, yk);
        }
        self.n += m;
        self.fill = 0;
    }

    fn finish(&mut self) {
        self.flush();
        let zl = self.z_len;
        for i in 0..zl {
            for j in 0..i {
                self.zz[i * zl + j] = self.zz[j * zl + i];
            }
        }
        self.bz = Vec::new();
        self.by = Vec::new();
    }

    /// Sum of squared errors of the prediction `w z` (`w`: `h × z_len`) over these samples.
    fn sse(&self, w: &[f64], h: usize) -> f64 {
        let zl = self.z_len;
        let mut sse = self.yy;
        let mut gw = vec![0f64; zl];
        for k in 0..h {
            let wk = &w[k * zl..(k + 1) * zl];
            for (i, g) in gw.iter_mut().enumerate() {
                *g = dot(&self.zz[i * zl..(i + 1) * zl], wk);
            }
            let cross: f64 = (0..zl).map(|i| wk[i] * self.zy[i * h + k]).sum();
            sse += dot(wk, &gw) - 2.0 * cross;
        }
        sse.max(0.0)
    }
}

/// Dot product in eight lanes (vectorizes without reassociation flags).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// A family's features as sparse linear combinations of `z = [block₀; …; 1]` (`rows`), and the
/// part of `z` added back to the forecast (NLinear's last value: `shift`).
struct FeatureMap {
    rows: Vec<Vec<(usize, f64)>>,
    z_len: usize,
    shift: Option<usize>,
}

impl FeatureMap {
    fn new(family: Family, blocks: usize, l: usize, kernel: usize, target_block: usize) -> Self {
        let z_len = blocks * l + 1;
        let mut rows = Vec::new();
        for b in 0..blocks {
            let at = |i: usize| b * l + i;
            match family {
                Family::Linear => rows.extend((0..l).map(|i| vec![(at(i), 1.0)])),
                Family::NLinear => {
                    rows.extend((0..l - 1).map(|i| vec![(at(i), 1.0), (at(l - 1), -1.0)]))
                }
                Family::DLinear => {
                    // trend: mean of `kernel` values centred on i, the ends repeated
                    let p = kernel / 2;
                    let trend: Vec<Vec<(usize, f64)>> = (0..l)
                        .map(|i| {
                            let mut w = vec![0f64; l];
                            for j in i as isize - p as isize..=(i + p) as isize {
                                w[j.clamp(0, l as isize - 1) as usize] += 1.0 / kernel as f64;
                            }
                            w.iter()
                                .enumerate()
                                .filter(|(_, &v)| v != 0.0)
                                .map(|(j, &v)| (at(j), v))
                                .collect()
                        })
                        .collect();
                    for (i, t) in trend.iter().enumerate() {
                        let mut s: Vec<(usize, f64)> = t.iter().map(|&(j, v)| (j, -v)).collect();
                        match s.iter_mut().find(|(j, _)| *j == at(i)) {
                            Some(e) => e.1 += 1.0,
                            None => s.push((at(i), 1.0)),
                        }
                        rows.push(s);
                    }
                    rows.extend(trend);
                }
            }
        }
        rows.push(vec![(z_len - 1, 1.0)]);
        let shift = (family == Family::NLinear).then_some(target_block * l + l - 1);
        FeatureMap { rows, z_len, shift }
    }

    /// Ridge solution for `moments` mapped to `z` space: `h × z_len`, or `None` when singular.
    fn solve(&self, m: &Moments, lambda: f64, h: usize) -> Option<Vec<f64>> {
        let (f, zl) = (self.rows.len(), self.z_len);
        let n = m.n.max(1) as f64;
        // T G (f × zl), then T G Tᵀ (f × f) and T (Z Y − G Sᵀ) (f × h), all over n
        let mut tg = vec![0f64; f * zl];
        for (r, row) in self.rows.iter().enumerate() {
            for &(i, v) in row {
                for j in 0..zl {
                    tg[r * zl + j] += v * m.zz[i * zl + j];
                }
            }
        }
        let mut a = vec![0f64; f * f];
        for r in 0..f {
            for (q, row) in self.rows.iter().enumerate().skip(r) {
                let s: f64 = row.iter().map(|&(i, v)| v * tg[r * zl + i]).sum::<f64>() / n;
                a[r * f + q] = s;
                a[q * f + r] = s;
            }
        }
        let mut rhs = vec![0f64; f * h];
        for (r, row) in self.rows.iter().enumerate() {
            for k in 0..h {
                let mut s: f64 = row.iter().map(|&(i, v)| v * m.zy[i * h + k]).sum();
                if let Some(last) = self.shift {
                    s -= tg[r * zl + last];
                }
                rhs[r * h + k] = s / n;
            }
        }
        for r in 0..f - 1 {
            a[r * f + r] += lambda;
        }
        cholesky_solve(&mut a, f, &mut rhs, h)?;
        // back to z space: w = Wᵀ T + S
        let mut w = vec![0f64; h * zl];
        for (r, row) in self.rows.iter().enumerate() {
            for &(i, v) in row {
                for k in 0..h {
                    w[k * zl + i] += rhs[r * h + k] * v;
                }
            }
        }
        if let Some(last) = self.shift {
            for k in 0..h {
                w[k * zl + last] += 1.0;
            }
        }
        Some(w)
    }
}

/// Solves `a x = b` in place (`a`: `n × n` symmetric positive definite, overwritten by its
/// Cholesky factor; `b`: `n × k`, overwritten by `x`). `None` when `a` is not positive definite.
fn cholesky_solve(a: &mut [f64], n: usize, b: &mut [f64], k: usize) -> Option<()> {
    for j in 0..n {
        let d = a[j * n + j] - dot(&a[j * n..j * n + j], &a[j * n..j * n + j]);
        if d.is_nan() || d <= 1e-12 {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - dot(&a[i * n..i * n + j], &a[j * n..j * n + j]);
            a[i * n + j] = s / d;
        }
    }
    // L y = b, then Lᵀ x = y
    for c in 0..k {
        for i in 0..n {
            let mut s = b[i * k + c];
            for j in 0..i {
                s -= a[i * n + j] * b[j * k + c];
            }
            b[i * k + c] = s / a[i * n + i];
        }
        for i in (0..n).rev() {
            let mut s = b[i * k + c];
            for j in i + 1..n {
                s -= a[j * n + i] * b[j * k + c];
            }
            b[i * k + c] = s / a[i * n + i];
        }
    }
    Some(())
}

/// The fitted map as a graph: the window turned to `[1, columns, lookback]`, one `EinSum`
/// contracting the lookback (the form the int8 rewrite quantizes), the bias, back to
/// `[1, horizon, targets]`.
fn build_graph(
    weights: &[Vec<f64>],
    channels: Channels,
    l: usize,
    h: usize,
    c: usize,
) -> TractResult<TypedModel> {
    let mut m = TypedModel::default();
    let x = m.add_source("window", f32::fact([1, l, c]))?;
    let x = m.wire_node("columns_first", AxisOp::Move(1, 2), &[x])?[0];
    let zl = weights[0].len() / h;
    let split = |w: &[f64]| -> (Vec<f32>, Vec<f32>) {
        let mut mat = Vec::with_capacity(h * (zl - 1));
        let mut bias = Vec::with_capacity(h);
        for k in 0..h {
            mat.extend(w[k * zl..(k + 1) * zl - 1].iter().map(|&v| v as f32));
            bias.push(w[(k + 1) * zl - 1] as f32);
        }
        (mat, bias)
    };
    let y = match channels {
        Channels::Shared => {
            let (mat, bias) = split(&weights[0]);
            let w = m.add_const("weight", tensor1(&mat).into_shape(&[h, l])?)?;
            let y = m.wire_node(
                "forecast",
                EinSum::new("bcl,hl->bch".parse()?, f32::datum_type()),
                &[x, w],
            )?[0];
            let b = m.add_const("bias", tensor1(&bias).into_shape(&[1, 1, h])?)?;
            let y = m.wire_node("forecast.bias", math::add(), &[y, b])?[0];
            m.wire_node("horizon_first", AxisOp::Move(2, 1), &[y])?[0]
        }
        Channels::Individual => {
            let (mut mats, mut biases) = (Vec::new(), Vec::new());
            for w in weights {
                let (mat, bias) = split(w);
                mats.extend(mat);
                biases.extend(bias);
            }
            let w = m.add_const("weight", tensor1(&mats).into_shape(&[c, h, l])?)?;
            let y = m.wire_node(
                "forecast",
                EinSum::new("bcl,chl->bch".parse()?, f32::datum_type()),
                &[x, w],
            )?[0];
            let b = m.add_const("bias", tensor1(&biases).into_shape(&[1, c, h])?)?;
            let y = m.wire_node("forecast.bias", math::add(), &[y, b])?[0];
            m.wire_node("horizon_first", AxisOp::Move(2, 1), &[y])?[0]
        }
        Channels::Target(_) => {
            let (mat, bias) = split(&weights[0]);
            let flat = m.wire_node(
                "flatten",
                AxisOp::Reshape(1, tvec![c.to_dim(), l.to_dim()], tvec![(c * l).to_dim()]),
                &[x],
            )?[0];
            let w = m.add_const("weight", tensor1(&mat).into_shape(&[h, c * l])?)?;
            let y = m.wire_node(
                "forecast",
                EinSum::new("bk,hk->bh".parse()?, f32::datum_type()),
                &[flat, w],
            )?[0];
            let b = m.add_const("bias", tensor1(&bias).into_shape(&[1, h])?)?;
            let y = m.wire_node("forecast.bias", math::add(), &[y, b])?[0];
            m.wire_node("target_axis", AxisOp::Add(2), &[y])?[0]
        }
    };
    m.select_output_outlets(&[y])?;
    m.into_decluttered()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(rows: usize, f: impl Fn(usize, usize) -> f32, c: usize) -> Series {
        Series {
            columns: (0..c).map(|i| format!("c{i}")).collect(),
            values: (0..rows * c).map(|i| f(i / c, i % c)).collect(),
            times: None,
            time_problem: None,
        }
    }

    fn norm(c: usize, target: &str, l: usize, h: usize) -> Normalization {
        let columns: Vec<String> = (0..c).map(|i| format!("c{i}")).collect();
        Normalization {
            targets: crate::forecast::targets_of(target, &columns).unwrap(),
            columns,
            mean: vec![0.0; c],
            std: vec![1.0; c],
            lookback: l,
            horizon: h,
        }
    }

    fn options(family: Family, individual: bool) -> FitOptions {
        FitOptions {
            family,
            individual,
            moving_average: 5,
            train: (0, 300),
            valid: (300, 400),
            lambdas: vec![1e-9, 1e-3],
        }
    }

    fn run(model: &TypedModel, window: Vec<f32>, l: usize, c: usize) -> Vec<f32> {
        let mut engine = kinglet_runtime::engine::Engine::from_typed(model.clone()).unwrap();
        engine
            .run_f32(tensor1(&window).into_shape(&[1, l, c]).unwrap())
            .unwrap()
    }

    #[test]
    fn every_family_recovers_a_series_that_a_linear_map_predicts_exactly() {
        // x_t = 0.9 x_{t-1} - 0.5 x_{t-2} + 0.1: a linear map of the window predicts it exactly
        let mut v = vec![1.0f64, 0.3];
        for t in 2..400 {
            v.push(0.9 * v[t - 1] - 0.5 * v[t - 2] + 0.1);
        }
        let s = series(400, |r, _| v[r] as f32, 1);
        for family in [Family::Linear, Family::NLinear, Family::DLinear] {
            let (model, report) =
                fit_linear(&s, &norm(1, "all", 8, 3), &options(family, false)).unwrap();
            assert!(report.valid_mse < 1e-6, "{family:?}: {report:?}");
            let got = run(
                &model,
                v[100..108].iter().map(|&x| x as f32).collect(),
                8,
                1,
            );
            for (k, g) in got.iter().enumerate() {
                assert!(
                    (*g as f64 - v[108 + k]).abs() < 1e-3,
                    "{family:?} step {k}: {g}"
                );
            }
        }
    }

    #[test]
    fn individual_columns_get_their_own_weights_and_a_target_reads_every_column() {
        // column 1 is column 0 delayed by one row, scaled: only its own weights or
        // column 0's history predict it
        let base: Vec<f64> = (0..401)
            .map(|t| (t as f64 * 0.37).sin() + (t as f64 * 0.05).cos())
            .collect();
        let s = series(
            400,
            |r, c| {
                if c == 0 {
                    base[r + 1] as f32
                } else {
                    2.0 * base[r] as f32
                }
            },
            2,
        );
        let (m, r) =
            fit_linear(&s, &norm(2, "all", 12, 2), &options(Family::Linear, true)).unwrap();
        assert_eq!(r.channels, "individual");
        assert!(r.valid_mse < 1e-4, "{r:?}");
        let window: Vec<f32> = s.slice_rows(50, 62).to_vec();
        let got = run(&m, window, 12, 2);
        let truth = s.slice_rows(62, 64);
        for (g, t) in got.iter().zip(truth) {
            assert!((g - t).abs() < 1e-2, "{got:?} vs {truth:?}");
        }
        let (m, r) =
            fit_linear(&s, &norm(2, "c1", 12, 2), &options(Family::DLinear, false)).unwrap();
        assert_eq!(r.channels, "target");
        let got = run(&m, s.slice_rows(50, 62).to_vec(), 12, 2);
        assert_eq!(got.len(), 2);
        assert!((got[0] - s.values[62 * 2 + 1]).abs() < 1e-2, "{got:?}");
    }

    #[test]
    fn a_constant_column_is_refused_not_fitted_with_nan() {
        let s = series(400, |_, _| 1.0, 1);
        let mut o = options(Family::Linear, false);
        o.lambdas = vec![0.0];
        let err = fit_linear(&s, &norm(1, "all", 4, 2), &o).unwrap_err();
        assert!(err.to_string().contains("singular"), "{err}");
    }

    #[test]
    fn ranges_too_short_for_a_window_are_refused() {
        let s = series(50, |r, _| r as f32, 1);
        let mut o = options(Family::Linear, false);
        o.train = (0, 10);
        let err = fit_linear(&s, &norm(1, "all", 8, 3), &o).unwrap_err();
        assert!(
            err.to_string()
                .contains("training rows 0..10 hold no window"),
            "{err}"
        );
    }
}
