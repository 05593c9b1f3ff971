//! A classifier's report on labelled data: per-class precision, recall and
//! F1 (scikit-learn's `classification_report`), the confusion matrix as text
//! and as an SVG heat map with the class names, and top-k accuracy.

use ndarray::ArrayView2;

/// Counts of a classifier's answers on labelled data.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassReport {
    /// Class names (`class N` where the data has none).
    pub classes: Vec<String>,
    /// `confusion[t][p]`: samples of true class `t` predicted as `p`.
    pub confusion: Vec<Vec<usize>>,
    /// `(k, share)`: share of samples whose label is among the k highest
    /// outputs, for each k asked (and at most the number of classes).
    pub top_k: Vec<(usize, f64)>,
}

impl ClassReport {
    /// The report of `outputs` (one row of class scores per sample) against
    /// `labels`; `classes` may be empty (then numbered).
    ///
    /// ```
    /// # use cnn_runtime::report::ClassReport;
    /// let out = ndarray::arr2(&[[0.9f32, 0.1], [0.2, 0.8], [0.6, 0.4]]);
    /// let r = ClassReport::new(out.view(), &[0, 1, 1], &[], &[1]);
    /// assert_eq!(r.confusion, vec![vec![1, 0], vec![1, 1]]);
    /// assert_eq!(r.recall(1), 0.5);
    /// ```
    pub fn new(
        outputs: ArrayView2<'_, f32>,
        labels: &[usize],
        classes: &[String],
        ks: &[usize],
    ) -> ClassReport {
        let n = outputs.ncols();
        let names = (0..n)
            .map(|c| classes.get(c).cloned().unwrap_or(format!("class {c}")))
            .collect();
        let mut confusion = vec![vec![0usize; n]; n];
        let ks: Vec<usize> = ks.iter().map(|&k| k.clamp(1, n.max(1))).collect();
        let mut hits = vec![0usize; ks.len()];
        for (row, &l) in outputs.outer_iter().zip(labels) {
            if l >= n {
                continue;
            }
            // The label's rank: classes scoring higher (ties to the lower index).
            let v = row[l];
            let rank = row
                .iter()
                .enumerate()
                .filter(|&(c, &s)| s > v || (s == v && c < l))
                .count();
            let best = (0..n).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            confusion[l][best] += 1;
            for (h, &k) in hits.iter_mut().zip(&ks) {
                *h += usize::from(rank < k);
            }
        }
        let total = labels.len().max(1) as f64;
        ClassReport {
            classes: names,
            confusion,
            top_k: ks
                .iter()
                .zip(hits)
                .map(|(&k, h)| (k, h as f64 / total))
                .collect(),
        }
    }

    /// Samples of class `c`.
    pub fn support(&self, c: usize) -> usize {
        self.confusion[c].iter().sum()
    }

    /// Of the samples predicted `c`, the share that are `c` (0 when none).
    pub fn precision(&self, c: usize) -> f64 {
        let predicted: usize = self.confusion.iter().map(|r| r[c]).sum();
        ratio(self.confusion[c][c], predicted)
    }

    /// Of the samples of class `c`, the share predicted `c` (0 when none).
    pub fn recall(&self, c: usize) -> f64 {
        ratio(self.confusion[c][c], self.support(c))
    }

    /// The harmonic mean of precision and recall (0 when both are).
    pub fn f1(&self, c: usize) -> f64 {
        let (p, r) = (self.precision(c), self.recall(c));
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// The per-class table, the macro averages, top-k and the confusion
    /// matrix (rows: true class, columns: predicted), as text.
    pub fn text(&self) -> String {
        // Wide enough for "macro avg" and the matrix's "name N" row labels.
        let w = (self.classes.iter().enumerate())
            .map(|(c, name)| name.len() + 1 + c.to_string().len())
            .max()
            .unwrap_or(0)
            .max(9);
        let mut s = format!("{:>w$}  precision  recall  f1-score  support\n", "");
        for (c, name) in self.classes.iter().enumerate() {
            s += &format!(
                "{name:>w$}  {:>9.4}  {:>6.4}  {:>8.4}  {:>7}\n",
                self.precision(c),
                self.recall(c),
                self.f1(c),
                self.support(c)
            );
        }
        let k = self.classes.len().max(1) as f64;
        let mean = |f: &dyn Fn(usize) -> f64| (0..self.classes.len()).map(f).sum::<f64>() / k;
        let total: usize = (0..self.classes.len()).map(|c| self.support(c)).sum();
        s += &format!(
            "{:>w$}  {:>9.4}  {:>6.4}  {:>8.4}  {total:>7}\n",
            "macro avg",
            mean(&|c| self.precision(c)),
            mean(&|c| self.recall(c)),
            mean(&|c| self.f1(c)),
        );
        for (k, share) in &self.top_k {
            s += &format!("top-{k} accuracy: {:.2}%\n", 100.0 * share);
        }
        s += "\nconfusion matrix (rows: true class, columns: predicted)\n";
        let cw = self
            .confusion
            .iter()
            .flatten()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(1)
            .max(3);
        s += &format!("{:>w$}", "");
        for c in 0..self.classes.len() {
            s += &format!(" {c:>cw$}");
        }
        s += "\n";
        for (c, row) in self.confusion.iter().enumerate() {
            s += &format!("{:>w$}", format!("{} {c}", self.classes[c]));
            for v in row {
                s += &format!(" {v:>cw$}");
            }
            s += "\n";
        }
        s
    }

    /// The confusion matrix as an SVG heat map: each cell shaded by its
    /// share of the true class's samples, with its count, the class names
    /// along both axes.
    pub fn svg(&self) -> String {
        let n = self.classes.len();
        let cell = 44usize;
        let label = 8 * self.classes.iter().map(|c| c.len()).max().unwrap_or(1) + 16;
        let (x0, y0) = (label, 40 + label);
        let title = "confusion matrix: rows true class, columns predicted";
        // About 7 px a character at 14 px, so the title is never cut.
        let (w, h) = (
            (x0 + n * cell + 20).max(20 + 7 * title.len()),
            y0 + n * cell + 20,
        );
        let esc = |t: &str| {
            t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
             <text x=\"10\" y=\"20\" font-size=\"14\">{title}</text>\n"
        );
        for (c, name) in self.classes.iter().enumerate() {
            let name = esc(name);
            let mid = c * cell + cell / 2;
            s += &format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{name}</text>\n",
                x0 - 6,
                y0 + mid
            );
            s += &format!(
                "<text transform=\"translate({},{}) rotate(-90)\" dominant-baseline=\"middle\">{name}</text>\n",
                x0 + mid,
                y0 - 6
            );
        }
        for (t, row) in self.confusion.iter().enumerate() {
            let support = self.support(t).max(1) as f64;
            for (p, &v) in row.iter().enumerate() {
                let share = v as f64 / support;
                // White to deep blue by the share of the row.
                let shade = |full: f64| (255.0 - share * (255.0 - full)).round() as u8;
                let (r, g, b) = (shade(8.0), shade(48.0), shade(107.0));
                let ink = if share > 0.5 { "white" } else { "black" };
                let (x, y) = (x0 + p * cell, y0 + t * cell);
                s += &format!(
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgb({r},{g},{b})\" stroke=\"#ccc\"/>\n\
                     <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\"{ink}\">{v}</text>\n",
                    x + cell / 2,
                    y + cell / 2
                );
            }
        }
        s += "</svg>\n";
        s
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_scores_match_a_hand_worked_case() {
        // 3 classes; true labels and the class each row scores highest.
        let out = ndarray::arr2(&[
            [0.8f32, 0.1, 0.1], // 0 -> 0
            [0.1, 0.7, 0.2],    // 0 -> 1 (label 0 ranks 3rd)
            [0.2, 0.5, 0.3],    // 1 -> 1
            [0.3, 0.3, 0.4],    // 1 -> 2 (label 1 ties class 0, ranks 3rd)
            [0.1, 0.2, 0.7],    // 2 -> 2
            [0.5, 0.1, 0.4],    // 2 -> 0 (label 2 ranks 2nd)
        ]);
        let labels = [0, 0, 1, 1, 2, 2];
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let r = ClassReport::new(out.view(), &labels, &names, &[1, 2, 5]);
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 1, 1], vec![1, 0, 1]]
        );
        assert_eq!((r.precision(0), r.recall(0), r.f1(0)), (0.5, 0.5, 0.5));
        assert_eq!(r.support(2), 2);
        assert_eq!(
            r.top_k,
            vec![(1, 3.0 / 6.0), (2, 4.0 / 6.0), (3, 1.0)],
            "k is capped at the class count"
        );
        let t = r.text();
        assert!(t.contains("top-2 accuracy: 66.67%"), "{t}");
        assert!(t.contains("macro avg"), "{t}");
        let svg = r.svg();
        assert_eq!(svg.matches("<rect x=").count(), 9);
        assert!(svg.contains(">a</text>") && svg.contains(">c</text>"));
    }

    #[test]
    fn a_class_never_predicted_scores_zero_not_nan() {
        let out = ndarray::arr2(&[[0.9f32, 0.1], [0.8, 0.2]]);
        let r = ClassReport::new(out.view(), &[0, 1], &[], &[1]);
        assert_eq!(r.precision(1), 0.0);
        assert_eq!(r.f1(1), 0.0);
        assert_eq!(r.classes, ["class 0", "class 1"]);
        let names = vec!["<&>".to_string(), "b".to_string()];
        let svg = ClassReport::new(out.view(), &[0, 1], &names, &[1]).svg();
        assert!(svg.contains("&lt;&amp;&gt;"), "names are escaped");
    }
}
