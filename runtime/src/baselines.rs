//! The forecasts any model must beat, on the same windows `kinglet eval` slides over: **naive**
//! (every step repeats the last observed value: "tomorrow = today") and **seasonal naive**
//! (each step repeats the value one season earlier: "this hour = the same hour yesterday"), and
//! MASE, the mean absolute error scaled by the seasonal naive's one-step error in sample
//! (Hyndman & Koehler 2006): below 1 beats it, above 1 does not.

use crate::error::{Error, Result};
use crate::manifest::ForecasterMeta;
use crate::series::Series;
use serde::Serialize;

/// How a season length was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeasonSource {
    /// Given with `--season`.
    Given,
    /// 24 for hourly rows.
    Hourly,
    /// 7 for daily rows that include weekends.
    Daily,
    /// 5 for daily rows without Saturdays and Sundays (trading days).
    BusinessDaily,
    /// 1 (no season: seasonal naive is naive) when the time step is unknown or unusual.
    None,
}

/// The season length for `series` (`given` wins): from its time step when it has times.
pub fn season_for(
    series: &Series,
    step_seconds: Option<i64>,
    given: Option<usize>,
) -> (usize, SeasonSource) {
    if let Some(m) = given {
        return (m.max(1), SeasonSource::Given);
    }
    match step_seconds.or_else(|| series.step_seconds()) {
        Some(3600) => (24, SeasonSource::Hourly),
        Some(s) if (86_400..=4 * 86_400).contains(&s) => {
            let weekends = series
                .times
                .as_ref()
                .is_some_and(|ts| ts.iter().any(|&t| crate::series::is_weekend(t)));
            if weekends || series.times.is_none() {
                (7, SeasonSource::Daily)
            } else {
                (5, SeasonSource::BusinessDaily)
            }
        }
        _ => (1, SeasonSource::None),
    }
}

/// Errors of one forecast method, comparable with the model's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MethodErrors {
    /// MSE on normalized values (the model's `mse` scale).
    pub mse: f64,
    /// MAE on normalized values.
    pub mae: f64,
    /// Mean over targets of MAE (real units) / the in-sample seasonal naive one-step MAE.
    pub mase: f64,
}

/// Both baselines over the windows of rows `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baselines {
    /// Season length used by seasonal naive and by MASE's scale.
    pub season: usize,
    /// Where it came from.
    pub season_from: SeasonSource,
    /// Rows `[a, b)` whose one-step seasonal naive error scales MASE: the rows before `start`
    /// (the history the model was fit on) when there are more than a season of them, else
    /// the evaluated rows.
    pub scale_rows: [usize; 2],
    /// Per target, the scale in real units.
    pub scale: Vec<f64>,
    /// "Tomorrow = today".
    pub naive: MethodErrors,
    /// "Same time one season ago".
    pub seasonal_naive: MethodErrors,
}

impl Baselines {
    /// MASE of a method whose per-target MAE (real units) is `mae_raw`.
    pub fn mase(&self, mae_raw: &[f64]) -> f64 {
        mase(mae_raw, &self.scale)
    }
}

fn mase(mae_raw: &[f64], scale: &[f64]) -> f64 {
    let n = mae_raw.len().max(1) as f64;
    mae_raw.iter().zip(scale).map(|(e, s)| e / s).sum::<f64>() / n
}

/// Computes the baselines on every window (stride 1, lookback + horizon rows) inside rows
/// `[start, end)` of `series`, whose columns are `meta.columns`.
pub fn baselines(
    series: &Series,
    meta: &ForecasterMeta,
    (start, end): (usize, usize),
    (season, season_from): (usize, SeasonSource),
) -> Result<Baselines> {
    let (l, h, f) = (meta.lookback, meta.horizon, meta.columns.len());
    let end = end.min(series.rows());
    if start + l + h > end {
        return Err(Error::BadInput(format!(
            "rows {start}..{end} hold no window of {l} + {h} rows"
        )));
    }
    let m = season.max(1);
    if m > start + l {
        return Err(Error::BadInput(format!(
            "a season of {m} rows is longer than the history before the first forecast ({} rows)",
            start + l
        )));
    }
    let targets = meta.target_indices();
    let t = targets.len();
    let value = |row: usize, c: usize| series.values[row * f + c] as f64;
    let norm = |v: f64, c: usize| (v - meta.mean[c] as f64) / meta.std[c] as f64;

    // MASE's scale: one-step seasonal naive error in sample
    let scale_rows = if start > m { [0, start] } else { [start, end] };
    let scale: Vec<f64> = targets
        .iter()
        .map(|&c| {
            let [a, b] = scale_rows;
            let n = (b - a - m) as f64;
            let s = (a + m..b)
                .map(|r| (value(r, c) - value(r - m, c)).abs())
                .sum::<f64>()
                / n;
            // a constant column has nothing to scale by: report MASE against 1 unit
            if s > 0.0 && s.is_finite() {
                s
            } else {
                1.0
            }
        })
        .collect();

    let windows = end - start - l - h + 1;
    let mut naive = Accumulator::new(t);
    let mut seasonal = Accumulator::new(t);
    for s in start..start + windows {
        let last = s + l - 1;
        for j in 0..h {
            let truth_row = s + l + j;
            let seasonal_row = truth_row - m * (j / m + 1);
            for (k, &c) in targets.iter().enumerate() {
                let truth = value(truth_row, c);
                naive.add(k, c, value(last, c), truth, &norm);
                seasonal.add(k, c, value(seasonal_row, c), truth, &norm);
            }
        }
    }
    let n = (windows * h) as f64;
    Ok(Baselines {
        season: m,
        season_from,
        scale_rows,
        naive: naive.finish(n, &scale),
        seasonal_naive: seasonal.finish(n, &scale),
        scale,
    })
}

struct Accumulator {
    se: f64,
    ae: f64,
    ae_raw: Vec<f64>,
}

impl Accumulator {
    fn new(targets: usize) -> Accumulator {
        Accumulator {
            se: 0.0,
            ae: 0.0,
            ae_raw: vec![0.0; targets],
        }
    }

    fn add(
        &mut self,
        k: usize,
        c: usize,
        guess: f64,
        truth: f64,
        norm: &dyn Fn(f64, usize) -> f64,
    ) {
        let d = norm(guess, c) - norm(truth, c);
        self.se += d * d;
        self.ae += d.abs();
        self.ae_raw[k] += (guess - truth).abs();
    }

    fn finish(self, per_target: f64, scale: &[f64]) -> MethodErrors {
        let n = per_target * self.ae_raw.len() as f64;
        let mae_raw: Vec<f64> = self.ae_raw.iter().map(|v| v / per_target).collect();
        MethodErrors {
            mse: self.se / n,
            mae: self.ae / n,
            mase: mase(&mae_raw, scale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(lookback: usize, horizon: usize) -> ForecasterMeta {
        ForecasterMeta {
            columns: vec!["y".into()],
            targets: vec!["y".into()],
            lookback,
            horizon,
            mean: vec![0.0],
            std: vec![1.0],
            channels_first: false,
            step_seconds: None,
        }
    }

    fn series(values: Vec<f32>) -> Series {
        Series {
            columns: vec!["y".into()],
            values,
            times: None,
            time_problem: None,
        }
    }

    #[test]
    fn a_pure_season_is_forecast_exactly_by_seasonal_naive_and_not_by_naive() {
        // period 4: 0 1 2 3 0 1 2 3 …
        let s = series((0..64).map(|i| (i % 4) as f32).collect());
        let b = baselines(&s, &meta(8, 4), (16, 64), (4, SeasonSource::Given)).unwrap();
        assert_eq!(b.seasonal_naive.mse, 0.0);
        assert_eq!(b.seasonal_naive.mase, 0.0);
        assert!(b.naive.mse > 1.0, "{b:?}");
        // the scale of the season's one-step error is 0 here: MASE falls back to 1 unit
        assert_eq!(b.scale, vec![1.0]);
    }

    #[test]
    fn naive_on_a_line_misses_by_the_slope_times_the_step() {
        // y = 2i: naive forecasts step j (0-based) short by 2(j+1); MAE over 3 steps = 4
        let s = series((0..40).map(|i| 2.0 * i as f32).collect());
        let b = baselines(&s, &meta(5, 3), (10, 40), (1, SeasonSource::None)).unwrap();
        assert!((b.naive.mae - 4.0).abs() < 1e-12, "{b:?}");
        assert_eq!(b.naive, b.seasonal_naive, "a season of 1 is naive");
        // scale: one-step naive error in the 10 rows before the range = 2
        assert_eq!(b.scale_rows, [0, 10]);
        assert!((b.naive.mase - 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_season_longer_than_the_history_is_an_error() {
        let s = series(vec![0.0; 40]);
        let e = baselines(&s, &meta(5, 3), (0, 40), (24, SeasonSource::Given)).unwrap_err();
        assert!(e.to_string().contains("season of 24 rows"), "{e}");
    }

    #[test]
    fn hourly_rows_have_a_daily_season_and_trading_days_a_week_of_five() {
        use chrono::NaiveDate;
        let mut s = series(vec![0.0; 10]);
        let at = |d: u32, h: u32| {
            NaiveDate::from_ymd_opt(2024, 1, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
        };
        s.times = Some((0..10).map(|h| at(1, h)).collect());
        assert_eq!(season_for(&s, None, None), (24, SeasonSource::Hourly));
        // 2024-01-01 is a Monday: Mon..Fri, Mon..Fri
        s.times = Some([1, 2, 3, 4, 5, 8, 9, 10, 11, 12].map(|d| at(d, 0)).into());
        assert_eq!(season_for(&s, None, None), (5, SeasonSource::BusinessDaily));
        s.times = Some((1..=10).map(|d| at(d, 0)).collect());
        assert_eq!(season_for(&s, None, None), (7, SeasonSource::Daily));
        assert_eq!(season_for(&s, None, Some(12)), (12, SeasonSource::Given));
        s.times = None;
        assert_eq!(season_for(&s, None, None), (1, SeasonSource::None));
    }
}
