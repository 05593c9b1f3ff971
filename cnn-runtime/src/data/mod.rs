//! Data sets: in-memory images and labels, and their loaders.

pub mod folder;
pub mod idx;
pub mod shapes;

pub use idx::{FashionMnist, Mnist, Split};

use ndarray::Array4;

/// Images (NHWC, f32) with one class label each.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `(N, H, W, C)`, values as the model takes them (pixels scaled to [0, 1]).
    pub images: Array4<f32>,
    /// One class index per image, each `< classes.len()` when names are known.
    pub labels: Vec<usize>,
    /// Class names, index = label (may be empty: unnamed classes).
    pub classes: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Splits off the last `fraction` of the samples as validation data, as
    /// Keras's `validation_split` does (the last samples, before any
    /// shuffling): `(training, validation)`. Errors unless `fraction` is in
    /// (0, 1) and leaves a sample on each side.
    ///
    /// ```
    /// # use cnn_runtime::data::Dataset;
    /// let d = Dataset { images: ndarray::Array4::zeros((10, 2, 2, 1)), labels: (0..10).collect(), classes: vec![] };
    /// let (train, val) = d.split(0.2).unwrap();
    /// assert_eq!((train.len(), val.labels.clone()), (8, vec![8, 9]));
    /// ```
    pub fn split(&self, fraction: f32) -> crate::Result<(Dataset, Dataset)> {
        let n = self.len();
        let held = (n as f64 * fraction as f64).round() as usize;
        if !(fraction > 0.0 && fraction < 1.0) || held == 0 || held >= n {
            return Err(crate::Error::Invalid(format!(
                "a validation split of {fraction} of {n} samples leaves none on one side; give a share in (0, 1)"
            )));
        }
        let part = |r: std::ops::Range<usize>| Dataset {
            images: self
                .images
                .slice_axis(ndarray::Axis(0), ndarray::Slice::from(r.clone()))
                .to_owned(),
            labels: self.labels[r].to_vec(),
            classes: self.classes.clone(),
        };
        Ok((part(0..n - held), part(n - held..n)))
    }
}

/// Where a data set comes from, as given to `cnnc --data`:
/// `mnist:DIR` (IDX files, gzipped or not), `fashion-mnist:DIR` (the same files
/// of Fashion-MNIST, with its class names), `shapes[:COUNT]` (the built-in
/// synthetic shapes, `COUNT` training images, default 1000) or `folder:DIR`
/// (one sub-folder per class).
///
/// `mnist:DIR` whose last path component contains `fashion` (any case) is read
/// as `fashion-mnist:DIR`: both data sets share one file layout, and only the
/// class names, which end up in saved weights, tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// MNIST digits: classes `"0"`..`"9"`.
    Mnist(std::path::PathBuf),
    /// Fashion-MNIST: classes [`idx::FASHION_MNIST_CLASSES`].
    FashionMnist(std::path::PathBuf),
    Shapes(usize),
    Folder(std::path::PathBuf),
}

/// A data set split for training: the training part and, when the source has
/// one, a held-out part (MNIST's test set, the shapes' test split, a folder's
/// validation split).
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Dataset,
    pub test: Option<Dataset>,
    /// Files the loader skipped, one `path: reason` line each (folders only).
    pub skipped: Vec<String>,
}

/// Default number of training images of `shapes` without `:COUNT`.
pub const DEFAULT_SHAPES: usize = 1000;
/// Share of a folder's images held out for validation when training.
pub const FOLDER_VALIDATION_SPLIT: f32 = 0.2;

impl std::str::FromStr for DataSource {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<DataSource> {
        let bad = |m: &str| crate::Error::Invalid(format!("--data {s}: {m}"));
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        match (kind, arg) {
            ("mnist", Some(d)) if !d.is_empty() => {
                let dir = std::path::PathBuf::from(d);
                Ok(if idx::looks_like_fashion(&dir) {
                    DataSource::FashionMnist(dir)
                } else {
                    DataSource::Mnist(dir)
                })
            }
            ("fashion-mnist", Some(d)) if !d.is_empty() => Ok(DataSource::FashionMnist(d.into())),
            ("folder", Some(d)) if !d.is_empty() => Ok(DataSource::Folder(d.into())),
            ("mnist" | "fashion-mnist" | "folder", _) => {
                Err(bad("give a directory, as in mnist:DIR or folder:DIR"))
            }
            ("shapes", None) => Ok(DataSource::Shapes(DEFAULT_SHAPES)),
            ("shapes", Some(n)) => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(DataSource::Shapes(n)),
                _ => Err(bad("the count after shapes: must be a positive integer")),
            },
            _ => Err(bad(
                "expected mnist:DIR, fashion-mnist:DIR, shapes[:COUNT] or folder:DIR",
            )),
        }
    }
}

impl DataSource {
    /// Loads the data for training at the model's `input` size. `seed` drives
    /// the synthetic data and the folder split.
    pub fn load_train(&self, input: [usize; 3], seed: u64) -> crate::Result<Splits> {
        match self {
            DataSource::Mnist(dir) => Ok(Splits {
                train: idx::Mnist::load(dir, idx::Split::Train)?,
                test: Some(idx::Mnist::load(dir, idx::Split::Test)?),
                skipped: Vec::new(),
            }),
            DataSource::FashionMnist(dir) => Ok(Splits {
                train: idx::FashionMnist::load(dir, idx::Split::Train)?,
                test: Some(idx::FashionMnist::load(dir, idx::Split::Test)?),
                skipped: Vec::new(),
            }),
            DataSource::Shapes(n) => {
                let (train, test) = shapes::try_shapes(*n, input, seed)?;
                Ok(Splits {
                    train,
                    test: Some(test),
                    skipped: Vec::new(),
                })
            }
            DataSource::Folder(dir) => {
                let f = folder::load_folder(dir, input, FOLDER_VALIDATION_SPLIT, seed)?;
                let test = (!f.validation.is_empty()).then_some(f.validation);
                Ok(Splits {
                    train: f.train,
                    test,
                    skipped: f.skipped,
                })
            }
        }
    }

    /// Loads the data to evaluate on: MNIST's test set, the shapes' test split
    /// (same `seed` as training gives the same images), or every image of a folder.
    pub fn load_eval(&self, input: [usize; 3], seed: u64) -> crate::Result<(Dataset, Vec<String>)> {
        match self {
            DataSource::Mnist(dir) => Ok((idx::Mnist::load(dir, idx::Split::Test)?, Vec::new())),
            DataSource::FashionMnist(dir) => {
                Ok((idx::FashionMnist::load(dir, idx::Split::Test)?, Vec::new()))
            }
            DataSource::Shapes(n) => Ok((shapes::try_shapes(*n, input, seed)?.1, Vec::new())),
            DataSource::Folder(dir) => {
                let f = folder::load_folder(dir, input, 0.0, seed)?;
                Ok((f.train, f.skipped))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_mnist_is_named_or_told_by_its_folder() {
        let parse = |s: &str| s.parse::<DataSource>().unwrap();
        assert_eq!(
            parse("fashion-mnist:d/x"),
            DataSource::FashionMnist("d/x".into())
        );
        assert_eq!(
            parse("mnist:../shared/data/fashion-mnist"),
            DataSource::FashionMnist("../shared/data/fashion-mnist".into())
        );
        assert_eq!(
            parse("mnist:../shared/data/mnist"),
            DataSource::Mnist("../shared/data/mnist".into())
        );
        let e = "fashion-mnist:".parse::<DataSource>().unwrap_err();
        assert!(e.to_string().contains("give a directory"), "{e}");
        let e = "cifar:x".parse::<DataSource>().unwrap_err();
        assert!(e.to_string().contains("fashion-mnist:DIR"), "{e}");
    }
}
