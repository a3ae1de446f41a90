//! Classification metrics of a migration model: the positive class is
//! "migrate" (can_migrate_task returned 1).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub n: usize,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// [[true stay, false migrate], [false stay, true migrate]]: rows truth, columns prediction.
    pub confusion: [[usize; 2]; 2],
}

impl Metrics {
    pub fn compute(truth: &[bool], pred: &[bool]) -> Self {
        assert_eq!(truth.len(), pred.len());
        let mut cm = [[0usize; 2]; 2];
        for (t, p) in truth.iter().zip(pred) {
            cm[*t as usize][*p as usize] += 1;
        }
        let (tn, fp, fneg, tp) = (cm[0][0], cm[0][1], cm[1][0], cm[1][1]);
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fneg);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Metrics {
            n: truth.len(),
            accuracy: ratio(tp + tn, truth.len()),
            precision,
            recall,
            f1,
            confusion: cm,
        }
    }

    /// Mean of the recalls of both classes: what accuracy means when the
    /// labels are imbalanced (most balancing decisions are "stay").
    /// Derived from the confusion matrix, so older model files have it too.
    pub fn balanced_accuracy(&self) -> f64 {
        let [[tn, fp], [fneg, tp]] = self.confusion;
        let rate = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        (rate(tp, tp + fneg) + rate(tn, tn + fp)) / 2.0
    }

    /// Matthews correlation coefficient, in [-1, 1]; 0 when a row or column
    /// of the confusion matrix is empty.
    pub fn mcc(&self) -> f64 {
        let [[tn, fp], [fneg, tp]] = self.confusion.map(|r| r.map(|v| v as f64));
        let den = ((tp + fp) * (tp + fneg) * (tn + fp) * (tn + fneg)).sqrt();
        if den == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fneg) / den
        }
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cm = self.confusion;
        writeln!(
            f,
            "n={} accuracy={:.4} precision={:.4} recall={:.4} f1={:.4} \
             balanced_accuracy={:.4} mcc={:.4}",
            self.n,
            self.accuracy,
            self.precision,
            self.recall,
            self.f1,
            self.balanced_accuracy(),
            self.mcc()
        )?;
        writeln!(f, "                 predicted stay  predicted migrate")?;
        writeln!(f, "  truth stay     {:>14}  {:>17}", cm[0][0], cm[0][1])?;
        write!(f, "  truth migrate  {:>14}  {:>17}", cm[1][0], cm[1][1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ratios() {
        let truth = [true, true, true, false, false, false, false, false];
        let pred = [true, true, false, true, false, false, false, false];
        let m = Metrics::compute(&truth, &pred);
        assert_eq!(m.confusion, [[4, 1], [1, 2]]);
        assert!((m.accuracy - 6.0 / 8.0).abs() < 1e-12);
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1 - 2.0 / 3.0).abs() < 1e-12);
        // tpr 2/3, tnr 4/5; mcc (2*4 - 1*1) / sqrt(3*3*5*5)
        assert!((m.balanced_accuracy() - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12);
        assert!((m.mcc() - 7.0 / 15.0).abs() < 1e-12);
        let all_stay = Metrics::compute(&truth, &[false; 8]);
        assert_eq!((all_stay.balanced_accuracy(), all_stay.mcc()), (0.5, 0.0));
        let inverted = Metrics::compute(&truth, &truth.map(|t| !t));
        assert!((inverted.mcc() + 1.0).abs() < 1e-12);
        let none = Metrics::compute(&[false, false], &[false, false]);
        assert_eq!(
            (none.precision, none.recall, none.f1, none.accuracy),
            (0.0, 0.0, 0.0, 1.0)
        );
    }
}
