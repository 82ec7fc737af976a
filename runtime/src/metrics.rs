//! Classification metrics: accuracy, per-class precision / recall / F1, macro-F1, confusion.

use serde::Serialize;

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// TP / (TP + FP); 0 when the class is never predicted.
    pub precision: f64,
    /// TP / (TP + FN); 0 when the class never occurs.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
    /// Number of rows whose true label is this class.
    pub support: usize,
}

/// Metrics over a labeled set.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationReport {
    /// Rows evaluated.
    pub rows: usize,
    /// Fraction of rows predicted right.
    pub accuracy: f64,
    /// Per class, in label order.
    pub per_class: Vec<ClassMetrics>,
    /// Unweighted mean of the per-class F1.
    pub macro_f1: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl ClassificationReport {
    /// Computes the report from `(true, predicted)` label index pairs over `classes` classes.
    pub fn from_pairs(pairs: &[(usize, usize)], classes: usize) -> ClassificationReport {
        let mut confusion = vec![vec![0usize; classes]; classes];
        for &(t, p) in pairs {
            confusion[t][p] += 1;
        }
        let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
        let per_class: Vec<ClassMetrics> = (0..classes)
            .map(|c| {
                let tp = confusion[c][c] as f64;
                let predicted: usize = (0..classes).map(|t| confusion[t][c]).sum();
                let support: usize = confusion[c].iter().sum();
                let precision = if predicted > 0 {
                    tp / predicted as f64
                } else {
                    0.0
                };
                let recall = if support > 0 {
                    tp / support as f64
                } else {
                    0.0
                };
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let macro_f1 = if classes > 0 {
            per_class.iter().map(|m| m.f1).sum::<f64>() / classes as f64
        } else {
            0.0
        };
        ClassificationReport {
            rows: pairs.len(),
            accuracy: if pairs.is_empty() {
                0.0
            } else {
                correct as f64 / pairs.len() as f64
            },
            per_class,
            macro_f1,
            confusion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_binary_case() {
        // true/pred: 3 TP(1), 1 FN (1→0), 2 FP (0→1), 4 TN
        let mut pairs = vec![(1, 1); 3];
        pairs.push((1, 0));
        pairs.extend([(0, 1); 2]);
        pairs.extend([(0, 0); 4]);
        let r = ClassificationReport::from_pairs(&pairs, 2);
        assert_eq!(r.rows, 10);
        assert!((r.accuracy - 0.7).abs() < 1e-12);
        assert!((r.per_class[1].precision - 0.6).abs() < 1e-12);
        assert!((r.per_class[1].recall - 0.75).abs() < 1e-12);
        assert!((r.per_class[0].precision - 0.8).abs() < 1e-12);
        assert!((r.per_class[0].recall - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(r.confusion, vec![vec![4, 2], vec![1, 3]]);
        assert_eq!(r.per_class[0].support, 6);
    }

    #[test]
    fn never_predicted_class_has_zero_precision_not_nan() {
        let r = ClassificationReport::from_pairs(&[(0, 1), (1, 1)], 2);
        assert_eq!(r.per_class[0].precision, 0.0);
        assert_eq!(r.per_class[0].f1, 0.0);
        assert!(!r.macro_f1.is_nan());
    }
}
