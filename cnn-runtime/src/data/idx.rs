//! IDX files (the MNIST / Fashion-MNIST format), gzipped or not.
//!
//! An IDX file is a big-endian header (magic `0x0000TTDD`: type `TT`, `DD`
//! dimensions, then one u32 per dimension) followed by the raw values. Only
//! unsigned bytes (type `0x08`) are read. The header says exactly how many bytes
//! must follow; that number is checked against the real file size (plain files)
//! or enforced while decompressing (gzip: reading stops at the expected size, and
//! more or fewer bytes is an error), so a hostile file cannot make the loader
//! allocate more than the data it really holds.

use super::Dataset;
use crate::{Error, Result};
use ndarray::Array4;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest IDX payload accepted (4 GiB): far above any real data set.
const MAX_IDX_BYTES: u64 = 1 << 32;

/// A decoded IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes; a name ending in `.gz` (or content
/// starting with the gzip magic) is decompressed on the fly.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::format(path, "not a regular file"));
    }
    let file_len = meta.len();
    let mut r = std::io::BufReader::new(f);
    // Sniff the gzip magic rather than trusting the file name.
    let gz = {
        use std::io::BufRead;
        r.fill_buf()
            .map_err(|e| Error::io(path, e))?
            .starts_with(&[0x1f, 0x8b])
    };
    if gz {
        read_idx_from(flate2::read::GzDecoder::new(r), None, path)
    } else {
        read_idx_from(r, Some(file_len), path)
    }
}

/// Reads an IDX stream. `len` is the stream's exact length when known (plain
/// files); otherwise (compressed) the header's size is enforced while reading.
pub fn read_idx_from(mut r: impl Read, len: Option<u64>, path: &Path) -> Result<Idx> {
    let fmt = |m: String| Error::format(path, m);
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::format(path, "truncated: the file ends inside the header or data")
        } else if e.kind() == std::io::ErrorKind::InvalidInput
            || e.kind() == std::io::ErrorKind::InvalidData
        {
            Error::format(path, format!("corrupt compressed data: {e}"))
        } else {
            Error::io(path, e)
        }
    };
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).map_err(io)?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(fmt("not an IDX file: bad magic number".into()));
    }
    if magic[2] != 0x08 {
        return Err(fmt(format!(
            "IDX type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            magic[2]
        )));
    }
    let ndims = magic[3] as usize;
    if ndims == 0 {
        return Err(fmt("IDX file with zero dimensions".into()));
    }
    let mut dims = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).map_err(io)?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    let count = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .filter(|&c| c <= MAX_IDX_BYTES)
        .ok_or_else(|| fmt(format!("dimensions {dims:?} are too large")))?;
    let header = 4 + 4 * ndims as u64;
    if let Some(len) = len {
        if len != header + count {
            return Err(fmt(format!(
                "dimensions {dims:?} need {} data bytes but the file has {}",
                count,
                len.saturating_sub(header)
            )));
        }
    }
    // Grow with the data actually read, so a lying compressed file costs nothing.
    let mut data = Vec::with_capacity(count.min(1 << 26) as usize);
    (&mut r).take(count).read_to_end(&mut data).map_err(io)?;
    if (data.len() as u64) < count {
        return Err(fmt(format!(
            "truncated: dimensions {dims:?} need {count} data bytes, found {}",
            data.len()
        )));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(io)? != 0 {
        return Err(fmt(format!(
            "more data than dimensions {dims:?} account for"
        )));
    }
    Ok(Idx { dims, data })
}

/// Finds `name` or `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    for cand in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(Error::Invalid(format!(
        "{}: neither {name} nor {name}.gz found (expected the MNIST IDX files there)",
        dir.display()
    )))
}

/// Which half of a data set: the 60,000 training images or the 10,000 test
/// images of MNIST and Fashion-MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`.
    Train,
    /// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`.
    Test,
}

/// The MNIST digits, from the original IDX files (gzipped or not).
///
/// ```no_run
/// use cnn_runtime::data::{Mnist, Split};
/// let train = Mnist::load("data/mnist", Split::Train)?;
/// assert_eq!(train.images.shape()[1..], [28, 28, 1]);
/// # Ok::<(), cnn_runtime::Error>(())
/// ```
pub struct Mnist;

impl Mnist {
    /// Loads the training or test set from `dir`:
    /// `train-images-idx3-ubyte[.gz]` + `train-labels-idx1-ubyte[.gz]`, or the
    /// `t10k-` pair. Pixels are scaled to [0, 1]; images are `(N, 28, 28, 1)`
    /// (any rows x columns in the file are kept). Classes are named `"0"`..`"9"`.
    pub fn load(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
        load_idx_pair(dir.as_ref(), split)
    }
}

/// Fashion-MNIST: MNIST's files and layout, clothes instead of digits; the
/// classes are named [`FASHION_MNIST_CLASSES`].
pub struct FashionMnist;

impl FashionMnist {
    /// As [`Mnist::load`], with Fashion-MNIST's class names.
    pub fn load(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
        let mut d = load_idx_pair(dir.as_ref(), split)?;
        d.classes = FASHION_MNIST_CLASSES
            .iter()
            .map(|c| c.to_string())
            .collect();
        Ok(d)
    }
}

fn load_idx_pair(dir: &Path, split: Split) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let ipath = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lpath = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&ipath)?;
    let labels = read_idx(&lpath)?;
    let [n, h, w] = images.dims[..] else {
        return Err(Error::format(
            &ipath,
            format!(
                "expected 3 dimensions (N, rows, cols), found {:?}",
                images.dims
            ),
        ));
    };
    let [nl] = labels.dims[..] else {
        return Err(Error::format(
            &lpath,
            format!("expected 1 dimension (N), found {:?}", labels.dims),
        ));
    };
    if nl != n {
        return Err(Error::Labels(format!(
            "{} has {n} images but {} has {nl} labels",
            ipath.display(),
            lpath.display()
        )));
    }
    if let Some(i) = labels.data.iter().position(|&l| l > 9) {
        return Err(Error::Labels(format!(
            "{}: label {} at index {i} is not a digit 0-9",
            lpath.display(),
            labels.data[i]
        )));
    }
    let pixels: Vec<f32> = images.data.iter().map(|&p| p as f32 / 255.0).collect();
    let images = Array4::from_shape_vec((n, h, w, 1), pixels)
        .map_err(|e| Error::format(&ipath, e.to_string()))?;
    Ok(Dataset {
        images,
        labels: labels.data.iter().map(|&l| l as usize).collect(),
        classes: (0..10).map(|d| d.to_string()).collect(),
    })
}

/// Fashion-MNIST's class names, index = label (from its authors' README).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Whether `dir`'s last component names Fashion-MNIST (contains `fashion`, any
/// case), as its authors' `fashion-mnist` folder does.
pub fn looks_like_fashion(dir: &Path) -> bool {
    dir.components()
        .next_back()
        .map(|c| c.as_os_str().to_string_lossy().to_lowercase())
        .is_some_and(|name| name.contains("fashion"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn fashion_is_told_by_the_last_path_component() {
        for (dir, fashion) in [
            ("../shared/data/fashion-mnist", true),
            ("data/Fashion_MNIST/", true),
            ("FASHION", true),
            ("../shared/data/mnist", false),
            ("fashion/mnist", false),
            ("mnist", false),
        ] {
            assert_eq!(looks_like_fashion(Path::new(dir)), fashion, "{dir}");
        }
    }

    #[test]
    fn reads_plain_stream() {
        let b = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let idx = read_idx_from(&b[..], Some(b.len() as u64), Path::new("t")).unwrap();
        assert_eq!(idx.dims, vec![2, 3]);
        assert_eq!(idx.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        for cut in 0..b.len() {
            let known = read_idx_from(&b[..cut], Some(cut as u64), Path::new("t"));
            let unknown = read_idx_from(&b[..cut], None, Path::new("t"));
            assert!(known.is_err() && unknown.is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn hostile_headers_are_refused_without_allocating() {
        // 4 billion x 4 billion: overflows the cap, refused from the header alone.
        let b = idx_bytes(&[u32::MAX, u32::MAX, 28], &[]);
        assert!(matches!(
            read_idx_from(&b[..], None, Path::new("t")),
            Err(Error::Format { .. })
        ));
        // A claim of 1 GiB with no data behind it (compressed-stream case).
        let b = idx_bytes(&[1 << 30], &[7; 10]);
        let e = read_idx_from(&b[..], None, Path::new("t")).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        // Extra bytes after the data.
        let b = idx_bytes(&[2], &[1, 2, 3]);
        assert!(read_idx_from(&b[..], None, Path::new("t")).is_err());
        // Wrong type (0x0D = float).
        let mut b = idx_bytes(&[1], &[0, 0, 0, 0]);
        b[2] = 0x0d;
        assert!(read_idx_from(&b[..], None, Path::new("t")).is_err());
    }
}
