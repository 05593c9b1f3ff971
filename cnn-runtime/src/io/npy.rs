//! NumPy `.npy` files: read (versions 1.0, 2.0, 3.0; C or Fortran order; common
//! numeric dtypes, either byte order) and write (version 1.0, little-endian, C order).
//!
//! Files are untrusted: the header is parsed with a small strict parser, its length
//! and the data size it implies are checked against the real number of bytes
//! available before any data buffer is allocated, and every size computation is
//! checked for overflow. Anything wrong is an [`Error::Format`] that says what.

use crate::{Error, Result};
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use std::io::Read;
use std::path::Path;

/// The magic string that starts every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Longest header accepted. NumPy itself refuses headers over 10 kB by default;
/// this leaves room for long shapes without letting a file claim gigabytes.
const MAX_HEADER: usize = 1 << 16;
/// Most dimensions accepted (NumPy's own limit is 64).
const MAX_DIMS: usize = 64;

/// Element type of an array, as its `descr` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// Parses a `descr` such as `<f4`, `|u1`, `>i8`. Returns the type and whether
    /// the data is big-endian.
    fn parse(descr: &str) -> Option<(DType, bool)> {
        let b = descr.as_bytes();
        if b.len() < 3 {
            return None;
        }
        let big = match b[0] {
            b'<' | b'|' | b'=' => false,
            b'>' => true,
            _ => return None,
        };
        let t = match &descr[1..] {
            "f4" => DType::F32,
            "f8" => DType::F64,
            "i1" => DType::I8,
            "i2" => DType::I16,
            "i4" => DType::I32,
            "i8" => DType::I64,
            "u1" => DType::U8,
            "u2" => DType::U16,
            "u4" => DType::U32,
            "u8" => DType::U64,
            "b1" => DType::Bool,
            _ => return None,
        };
        Some((t, big))
    }
}

/// The elements of an array, in C (row-major) order, converted to native endianness.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// Every signed integer type, widened to `i64`.
    I64(Vec<i64>),
    /// Every unsigned integer type and `bool`, widened to `u64`.
    U64(Vec<u64>),
}

/// A parsed `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The type the file stored (before widening).
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::U64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The array as `f32`: `f4` as is, `f8` rounded. Integer data is refused
    /// (`what` names the array in the error), since silently turning labels or raw
    /// bytes into inputs hides mistakes.
    pub fn into_f32(self, path: &Path, what: &str) -> Result<ArrayD<f32>> {
        let data = match self.data {
            NpyData::F32(v) => v,
            NpyData::F64(v) => v.into_iter().map(|x| x as f32).collect(),
            _ => {
                return Err(Error::format(
                    path,
                    format!(
                        "{what}: expected float data ('<f4' or '<f8'), found {:?}",
                        self.dtype
                    ),
                ))
            }
        };
        ArrayD::from_shape_vec(IxDyn(&self.shape), data)
            .map_err(|e| Error::format(path, format!("{what}: {e}")))
    }

    /// The array as class labels: integer data, any shape with one element per
    /// sample (`(N,)`, or `(N, 1)`), every value in `0..classes` when `classes` is given.
    pub fn into_labels(self, path: &Path, classes: Option<usize>) -> Result<Vec<usize>> {
        if self.shape.is_empty()
            || self.shape.len() > 2
            || (self.shape.len() == 2 && self.shape[1] != 1)
        {
            return Err(Error::format(
                path,
                format!(
                    "labels must have shape (N,) or (N, 1), found {:?}",
                    self.shape
                ),
            ));
        }
        let check = |i: usize, v: i128| -> Result<usize> {
            let ok = v >= 0 && !matches!(classes, Some(c) if v >= c as i128);
            if !ok {
                let range = classes.map_or("a non-negative class index".to_string(), |c| {
                    format!("a class index in 0..{c}")
                });
                return Err(Error::Labels(format!(
                    "{}: label {v} at index {i} is not {range}",
                    path.display()
                )));
            }
            Ok(v as usize)
        };
        let out: Result<Vec<usize>> = match self.data {
            NpyData::I64(v) => v
                .iter()
                .enumerate()
                .map(|(i, &x)| check(i, x as i128))
                .collect(),
            NpyData::U64(v) => v
                .iter()
                .enumerate()
                .map(|(i, &x)| check(i, x as i128))
                .collect(),
            _ => Err(Error::format(
                path,
                format!("labels must be integers, found {:?}", self.dtype),
            )),
        };
        out
    }
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::format(path, "not a regular file"));
    }
    read_npy_from(
        std::io::BufReader::new(f).take(meta.len()),
        meta.len(),
        path,
    )
}

/// Reads one array of exactly `len` bytes from `r` (`path` names the source in
/// errors). Fails when the header and `len` disagree, before allocating the data.
pub fn read_npy_from(mut r: impl Read, len: u64, path: &Path) -> Result<NpyArray> {
    let fmt = |m: String| Error::format(path, m);
    let mut pre = [0u8; 8];
    if len < 10 {
        return Err(fmt(format!("not a .npy file: only {len} bytes")));
    }
    read_exact(&mut r, &mut pre, path)?;
    if &pre[..6] != MAGIC {
        return Err(fmt(
            "not a .npy file: bad magic (expected \\x93NUMPY)".into()
        ));
    }
    let (major, minor) = (pre[6], pre[7]);
    let (hlen, prefix) = match major {
        1 => {
            let mut b = [0u8; 2];
            read_exact(&mut r, &mut b, path)?;
            (u16::from_le_bytes(b) as u64, 10u64)
        }
        2 | 3 => {
            if len < 12 {
                return Err(fmt(format!("truncated .npy header: only {len} bytes")));
            }
            let mut b = [0u8; 4];
            read_exact(&mut r, &mut b, path)?;
            (u32::from_le_bytes(b) as u64, 12u64)
        }
        _ => return Err(fmt(format!("unsupported .npy version {major}.{minor}"))),
    };
    if hlen > len - prefix {
        return Err(fmt(format!(
            "truncated: header claims {hlen} bytes but only {} follow",
            len - prefix
        )));
    }
    if hlen as usize > MAX_HEADER {
        return Err(fmt(format!(
            "header of {hlen} bytes is too long (max {MAX_HEADER})"
        )));
    }
    let mut hbuf = vec![0u8; hlen as usize];
    read_exact(&mut r, &mut hbuf, path)?;
    let text =
        std::str::from_utf8(&hbuf).map_err(|_| fmt("header is not text (UTF-8/ASCII)".into()))?;
    let header = parse_header(text).map_err(|m| fmt(format!("bad header: {m}")))?;
    let (dtype, big) = DType::parse(&header.descr)
        .ok_or_else(|| fmt(format!("unsupported dtype '{}'", header.descr)))?;
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| fmt(format!("shape {:?} has too many elements", header.shape)))?;
    let nbytes = count
        .checked_mul(dtype.size())
        .filter(|&n| n as u64 <= u64::MAX / 2)
        .ok_or_else(|| fmt(format!("shape {:?} has too many elements", header.shape)))?;
    let avail = len - prefix - hlen;
    if nbytes as u64 != avail {
        return Err(fmt(format!(
            "shape {:?} of {:?} needs {nbytes} data bytes but the file has {avail}",
            header.shape, dtype
        )));
    }
    // The size now matches what the source claims to hold. For a file that is
    // its real size; a compressed source may still stop early, so the buffer
    // grows with the bytes actually read beyond a first 256 MiB.
    let mut raw = Vec::with_capacity(nbytes.min(1 << 28));
    (&mut r)
        .take(nbytes as u64)
        .read_to_end(&mut raw)
        .map_err(|e| read_error(path, e))?;
    if raw.len() != nbytes {
        return Err(fmt(format!(
            "truncated: the data ends after {} of {nbytes} bytes",
            raw.len()
        )));
    }
    let data = decode(dtype, big, &raw);
    let data = if header.fortran_order && header.shape.len() > 1 {
        to_c_order(data, &header.shape)
    } else {
        data
    };
    Ok(NpyArray {
        dtype,
        shape: header.shape,
        data,
    })
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<()> {
    r.read_exact(buf).map_err(|e| read_error(path, e))
}

/// A read error as the caller should see it: a short or undecodable source is a
/// format problem of the file, anything else an I/O error.
fn read_error(path: &Path, e: std::io::Error) -> Error {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    match e.kind() {
        UnexpectedEof => Error::format(path, "truncated: the data ends early"),
        InvalidData | InvalidInput => Error::format(path, format!("corrupt data: {e}")),
        _ => Error::io(path, e),
    }
}

fn decode(dtype: DType, big: bool, raw: &[u8]) -> NpyData {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            raw.chunks_exact($n).map(|c| {
                let a: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                if big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }
            })
        };
    }
    match dtype {
        DType::F32 => NpyData::F32(conv!(f32, 4).collect()),
        DType::F64 => NpyData::F64(conv!(f64, 8).collect()),
        DType::I8 => NpyData::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
        DType::I16 => NpyData::I64(conv!(i16, 2).map(i64::from).collect()),
        DType::I32 => NpyData::I64(conv!(i32, 4).map(i64::from).collect()),
        DType::I64 => NpyData::I64(conv!(i64, 8).collect()),
        DType::U8 | DType::Bool => NpyData::U64(raw.iter().map(|&b| b as u64).collect()),
        DType::U16 => NpyData::U64(conv!(u16, 2).map(u64::from).collect()),
        DType::U32 => NpyData::U64(conv!(u32, 4).map(u64::from).collect()),
        DType::U64 => NpyData::U64(conv!(u64, 8).collect()),
    }
}

/// Reorders Fortran-order (column-major) data into C order.
fn to_c_order(data: NpyData, shape: &[usize]) -> NpyData {
    fn reorder<T: Clone>(v: Vec<T>, shape: &[usize]) -> Vec<T> {
        match ArrayD::from_shape_vec(IxDyn(shape).f(), v) {
            Ok(a) => a.as_standard_layout().iter().cloned().collect(),
            // Sizes were checked already; unreachable in practice.
            Err(_) => Vec::new(),
        }
    }
    match data {
        NpyData::F32(v) => NpyData::F32(reorder(v, shape)),
        NpyData::F64(v) => NpyData::F64(reorder(v, shape)),
        NpyData::I64(v) => NpyData::I64(reorder(v, shape)),
        NpyData::U64(v) => NpyData::U64(reorder(v, shape)),
    }
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses the header dict: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
/// (keys in any order, each exactly once, nothing else), followed by padding.
fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let mut p = Lex {
        s: text.as_bytes(),
        i: 0,
    };
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        match key.as_str() {
            "descr" if descr.is_none() => descr = Some(p.string()?),
            "fortran_order" if fortran.is_none() => fortran = Some(p.boolean()?),
            "shape" if shape.is_none() => shape = Some(p.tuple()?),
            k => return Err(format!("unexpected or repeated key '{k}'")),
        }
        p.ws();
        if !p.eat(b',') {
            p.ws();
            p.expect(b'}')?;
            break;
        }
    }
    if p.s[p.i..].iter().any(|c| !c.is_ascii_whitespace()) {
        return Err("text after the dict".into());
    }
    Ok(Header {
        descr: descr.ok_or("missing 'descr'")?,
        fortran_order: fortran.ok_or("missing 'fortran_order'")?,
        shape: shape.ok_or("missing 'shape'")?,
    })
}

struct Lex<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lex<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }
    fn string(&mut self) -> std::result::Result<String, String> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at byte {}", self.i)),
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err("unterminated string".into());
        }
        let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(v)
    }
    fn boolean(&mut self) -> std::result::Result<bool, String> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            Ok(true)
        } else if rest.starts_with(b"False") {
            self.i += 5;
            Ok(false)
        } else {
            Err(format!("expected True or False at byte {}", self.i))
        }
    }
    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                break;
            }
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            if start == self.i {
                return Err(format!("expected a dimension at byte {}", self.i));
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            // Python 2 headers may write longs as `3L`.
            self.eat(b'L');
            let d: usize = digits
                .parse()
                .map_err(|_| format!("dimension {digits} is too large"))?;
            dims.push(d);
            if dims.len() > MAX_DIMS {
                return Err(format!("more than {MAX_DIMS} dimensions"));
            }
            self.ws();
            if !self.eat(b',') {
                self.ws();
                self.expect(b')')?;
                break;
            }
        }
        Ok(dims)
    }
}

/// A type that can be written as a `.npy` array.
pub trait NpyElement: Copy {
    /// The `descr` string (little-endian).
    const DESCR: &'static str;
    /// Appends the little-endian bytes of `self`.
    fn put(self, out: &mut Vec<u8>);
}

/// `NpyElement` for numbers written with `to_le_bytes`.
macro_rules! npy_le_element {
    ($($t:ty => $descr:literal),* $(,)?) => {$(
        impl NpyElement for $t {
            const DESCR: &'static str = $descr;
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
npy_le_element!(f32 => "<f4", i64 => "<i8", i32 => "<i4");

impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

/// The bytes of a version 1.0 `.npy` file holding `data` (C order) with `shape`.
/// Fails when `data.len()` is not the product of `shape`.
pub fn npy_bytes<T: NpyElement>(shape: &[usize], data: &[T]) -> Result<Vec<u8>> {
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(data.len()) {
        return Err(Error::Invalid(format!(
            "npy: shape {shape:?} does not hold {} elements",
            data.len()
        )));
    }
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        T::DESCR
    );
    // Pad with spaces so that the data starts on a 64-byte boundary, ending in '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let hlen = u16::try_from(header.len())
        .map_err(|_| Error::Invalid(format!("npy: shape {shape:?} makes the header too long")))?;
    let mut out = Vec::with_capacity(10 + header.len() + std::mem::size_of_val(data));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&hlen.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &x in data {
        x.put(&mut out);
    }
    Ok(out)
}

/// Writes a version 1.0 `.npy` file atomically (see [`super::write_atomic`]).
pub fn write_npy<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let bytes = npy_bytes(shape, data)?;
    super::write_atomic(path, &bytes)
}

/// Writes an `f32` array of any dimension as `.npy`.
pub fn write_npy_array<S, D>(path: &Path, a: &ndarray::ArrayBase<S, D>) -> Result<()>
where
    S: ndarray::Data<Elem = f32>,
    D: ndarray::Dimension,
{
    let std = a.as_standard_layout();
    let data: Vec<f32> = std.iter().copied().collect();
    write_npy(path, a.shape(), &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parser_accepts_numpy_forms() {
        let h = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }  \n")
            .unwrap();
        assert_eq!(
            (h.descr.as_str(), h.fortran_order, h.shape),
            ("<f4", false, vec![2, 3])
        );
        let h = parse_header("{'shape': (), 'descr': '|u1', 'fortran_order': True}").unwrap();
        assert!(h.shape.is_empty() && h.fortran_order);
        let h = parse_header("{'descr':'<i8','fortran_order':False,'shape':(5,)}").unwrap();
        assert_eq!(h.shape, vec![5]);
    }

    #[test]
    fn header_parser_rejects_junk() {
        for bad in [
            "",
            "{",
            "{'descr': '<f4'}",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': ()}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': ()} junk",
            "{'descr: '<f4', 'fortran_order': False, 'shape': ()}",
        ] {
            assert!(parse_header(bad).is_err(), "accepted {bad:?}");
        }
    }
}
