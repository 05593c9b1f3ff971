//! `.npy` / `.npz` / `.safetensors` I/O and weight files: round trips, the Keras
//! oracle's files, interoperability with `ndarray-npy`, and hostile files (every
//! one must give an error, never a panic or a huge allocation).

use cnn_runtime::io::npy::{npy_bytes, read_npy, read_npy_from, write_npy, DType, NpyData};
use cnn_runtime::io::npz::{zip_stored, Npz};
use cnn_runtime::io::safetensors::{parse_safetensors, safetensors_bytes};
use cnn_runtime::io::{load_weights, save_weights, write_npz, WeightsMeta};
use cnn_runtime::{Error, Model, Optimizer, Param, ParamMut, Result};
use ndarray::{ArrayView2, ArrayView4};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

fn goldens() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/goldens")
}

/// A model that is nothing but named parameter tensors: enough for weight files.
struct Params {
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Params {
    fn new(spec: &[(&str, &[usize])]) -> Params {
        let tensors = spec
            .iter()
            .enumerate()
            .map(|(k, (n, s))| {
                let len = s.iter().product::<usize>();
                let data = (0..len)
                    .map(|i| (k * 1000 + i) as f32 * 0.25 - 3.0)
                    .collect();
                (n.to_string(), s.to_vec(), data)
            })
            .collect();
        Params { tensors }
    }
}

impl Model for Params {
    fn input_shape(&self) -> [usize; 3] {
        [1, 1, 1]
    }
    fn output_shape(&self) -> Vec<usize> {
        vec![1]
    }
    fn ends_in_softmax(&self) -> bool {
        false
    }
    fn forward_batch(&mut self, _x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        Err(Error::Invalid("not a real model".into()))
    }
    fn train_batch(
        &mut self,
        _x: ArrayView4<'_, f32>,
        _l: &[usize],
        _o: &mut dyn Optimizer,
    ) -> Result<f32> {
        Err(Error::Invalid("not a real model".into()))
    }
    fn params(&self) -> Vec<Param<'_>> {
        self.tensors
            .iter()
            .map(|(n, s, d)| Param {
                name: n.clone(),
                shape: s.clone(),
                data: d,
            })
            .collect()
    }
    fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        self.tensors
            .iter_mut()
            .map(|(n, s, d)| ParamMut {
                name: n.clone(),
                shape: s.clone(),
                data: d,
            })
            .collect()
    }
}

const CLS_SMALL: &[(&str, &[usize])] = &[
    ("layer0.kernel", &[3, 3, 3, 4]),
    ("layer0.bias", &[4]),
    ("layer2.kernel", &[3, 3, 4, 8]),
    ("layer2.bias", &[8]),
    ("layer4.kernel", &[128, 5]),
    ("layer4.bias", &[5]),
];

#[test]
fn npy_round_trip_and_ndarray_npy_agree() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 1.0).collect();
    write_npy(&p, &[2, 3, 4], &data).unwrap();
    let a = read_npy(&p).unwrap();
    assert_eq!(a.shape, vec![2, 3, 4]);
    assert_eq!(a.data, NpyData::F32(data.clone()));
    // The file is a standard .npy: another reader sees the same array.
    let other: ndarray::Array3<f32> = ndarray_npy::read_npy(&p).unwrap();
    assert_eq!(other.iter().copied().collect::<Vec<_>>(), data);
    // Data starts on a 64-byte boundary, as NumPy writes it.
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!((bytes.len() - 24 * 4) % 64, 0);

    // i64 labels, 0-d scalars, u8, and files written by ndarray-npy.
    write_npy(&p, &[3], &[0i64, 4, 2]).unwrap();
    assert_eq!(
        read_npy(&p).unwrap().into_labels(&p, Some(5)).unwrap(),
        vec![0, 4, 2]
    );
    write_npy(&p, &[], &[7.5f32]).unwrap();
    let s = read_npy(&p).unwrap();
    assert!(s.shape.is_empty() && s.data == NpyData::F32(vec![7.5]));
    write_npy(&p, &[2, 2], &[1u8, 2, 3, 255]).unwrap();
    assert_eq!(read_npy(&p).unwrap().dtype, DType::U8);
    let q = dir.path().join("b.npy");
    ndarray_npy::write_npy(&q, &ndarray::arr2(&[[1i32, 2], [3, 4]])).unwrap();
    let b = read_npy(&q).unwrap();
    assert_eq!((b.dtype, b.shape.clone()), (DType::I32, vec![2, 2]));
    assert!(b
        .into_labels(&q, None)
        .unwrap_err()
        .to_string()
        .contains("(N,)"));
    // Fortran order is turned into C order.
    let f = ndarray::arr2(&[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]).reversed_axes();
    ndarray_npy::write_npy(&q, &f).unwrap();
    let r = read_npy(&q).unwrap().into_f32(&q, "x").unwrap();
    assert_eq!(r.shape(), &[3, 2]);
    assert_eq!(
        r.iter().copied().collect::<Vec<_>>(),
        vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
}

#[test]
fn labels_are_checked() {
    let p = Path::new("l.npy");
    let bytes = npy_bytes(&[2], &[1i64, -1]).unwrap();
    let a = read_npy_from(&bytes[..], bytes.len() as u64, p).unwrap();
    let e = a.into_labels(p, Some(10)).unwrap_err();
    assert!(
        matches!(e, Error::Labels(_)) && e.to_string().contains("-1"),
        "{e}"
    );
    let bytes = npy_bytes(&[2], &[1i64, 10]).unwrap();
    let a = read_npy_from(&bytes[..], bytes.len() as u64, p).unwrap();
    let e = a.into_labels(p, Some(10)).unwrap_err();
    assert!(e.to_string().contains("0..10"), "{e}");
    let bytes = npy_bytes(&[2], &[1.0f32, 2.0]).unwrap();
    let a = read_npy_from(&bytes[..], bytes.len() as u64, p).unwrap();
    assert!(a.into_labels(p, None).is_err(), "float labels refused");
}

#[test]
fn oracle_io_npz_reads_like_ndarray_npy() {
    let path = goldens().join("lenet5/io.npz");
    let npz = Npz::open(&path).unwrap();
    let names = npz.names();
    for k in ["x", "y", "labels", "ce_loss", "layer0.kernel.ce_grad", "dx"] {
        assert!(names.contains(&k), "{k} missing from {names:?}");
    }
    let x = npz.read("x").unwrap();
    assert_eq!(x.shape, vec![2, 32, 32, 1]);
    let mut other = ndarray_npy::NpzReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let ox: ndarray::Array4<f32> = other.by_name("x.npy").unwrap();
    assert_eq!(
        x.into_f32(&path, "x").unwrap().into_raw_vec_and_offset().0,
        ox.into_raw_vec_and_offset().0
    );
    let labels = npz.read("labels").unwrap();
    assert_eq!(labels.dtype, DType::I64);
    let ol: ndarray::Array1<i64> = other.by_name("labels.npy").unwrap();
    let l = labels.into_labels(&path, Some(10)).unwrap();
    assert_eq!(l, ol.iter().map(|&v| v as usize).collect::<Vec<_>>());
    let loss = npz.read("ce_loss").unwrap();
    assert!(loss.shape.is_empty() && loss.len() == 1);
    assert!(npz.read("nope").is_err());
}

#[test]
fn oracle_weights_load_into_a_model_of_the_same_shapes() {
    let path = goldens().join("cls_small/weights.npz");
    let mut m = Params::new(CLS_SMALL);
    load_weights(&mut m, &path).unwrap();
    let mut other = ndarray_npy::NpzReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let k: ndarray::Array4<f32> = other.by_name("layer2.kernel.npy").unwrap();
    assert_eq!(m.tensors[2].2, k.into_raw_vec_and_offset().0);
    // A parameterless model and the oracle's empty archive.
    let mut none = Params::new(&[]);
    let meta = load_weights(&mut none, &goldens().join("pool_example_max/weights.npz")).unwrap();
    assert_eq!(meta, WeightsMeta::default());
    // lenet5's weights do not fit cls_small: the error names the tensor.
    let e = load_weights(&mut m, &goldens().join("lenet5/weights.npz")).unwrap_err();
    assert!(e.to_string().contains("layer0.kernel"), "{e}");
}

#[test]
fn weights_round_trip_in_both_formats_with_classes() {
    let dir = tempfile::tempdir().unwrap();
    let src = Params::new(CLS_SMALL);
    let meta = WeightsMeta {
        classes: vec!["cat".into(), "dog".into(), "ünï".into()],
    };
    for ext in ["safetensors", "npz"] {
        let p = dir.path().join(format!("w.{ext}"));
        save_weights(&src, &p, &meta).unwrap();
        let mut dst = Params::new(CLS_SMALL);
        for t in &mut dst.tensors {
            t.2.iter_mut().for_each(|x| *x = 0.0);
        }
        let got = load_weights(&mut dst, &p).unwrap();
        assert_eq!(got, meta, "{ext}");
        for (a, b) in src.tensors.iter().zip(&dst.tensors) {
            assert_eq!(a.2, b.2, "{ext} {}", a.0);
        }
        // No temporary file left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
            "{left:?}"
        );
    }
    // Our .npz opens with ndarray-npy too (a standard archive).
    let mut other =
        ndarray_npy::NpzReader::new(std::fs::File::open(dir.path().join("w.npz")).unwrap())
            .unwrap();
    let b: ndarray::Array1<f32> = other.by_name("layer4.bias.npy").unwrap();
    assert_eq!(b.to_vec(), src.tensors[5].2);
    assert!(save_weights(&src, &dir.path().join("w.bin"), &meta).is_err());
}

#[test]
fn weights_that_do_not_fit_are_refused_and_the_model_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    let mut other = Params::new(&[("layer0.kernel", &[3, 3, 3, 4]), ("layer0.bias", &[5])]);
    save_weights(&other, &p, &WeightsMeta::default()).unwrap();
    let mut m = Params::new(CLS_SMALL);
    let before = m.tensors.clone();
    let e = load_weights(&mut m, &p).unwrap_err();
    assert!(
        e.to_string().contains("layer0.bias") || e.to_string().contains("layer2.kernel"),
        "{e}"
    );
    assert_eq!(m.tensors, before);
    // Extra tensors: a different architecture.
    let mut big = Params::new(CLS_SMALL);
    big.tensors
        .push(("layer9.kernel".into(), vec![2], vec![0.0, 1.0]));
    save_weights(&big, &p, &WeightsMeta::default()).unwrap();
    let e = load_weights(&mut m, &p).unwrap_err();
    assert!(e.to_string().contains("layer9.kernel"), "{e}");
    // Non-finite values.
    other = Params::new(CLS_SMALL);
    other.tensors[3].2[2] = f32::NAN;
    save_weights(&other, &p, &WeightsMeta::default()).unwrap();
    let e = load_weights(&mut m, &p).unwrap_err();
    assert!(
        matches!(e, Error::NonFinite(_)) && e.to_string().contains("layer2.bias"),
        "{e}"
    );
    assert_eq!(m.tensors, before);
}

/// Every prefix of a valid file must be refused cleanly.
fn assert_all_truncations_fail(bytes: &[u8], parse: impl Fn(&[u8]) -> bool) {
    for cut in 0..bytes.len() {
        assert!(
            !parse(&bytes[..cut]),
            "accepted a file truncated to {cut} of {} bytes",
            bytes.len()
        );
    }
    assert!(parse(bytes), "the untruncated file must parse");
}

#[test]
fn hostile_npy_files() {
    let good = npy_bytes(&[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let parse = |b: &[u8]| read_npy_from(b, b.len() as u64, Path::new("h.npy")).is_ok();
    assert_all_truncations_fail(&good, parse);

    let with_header = |h: &str| {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0u8; 16]);
        b
    };
    let err = |b: Vec<u8>| -> String {
        match read_npy_from(&b[..], b.len() as u64, Path::new("h.npy")) {
            Err(e @ Error::Format { .. }) => e.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    };
    // A C-order header with this dtype and shape.
    let header_err = |descr: &str, shape: &str| {
        err(with_header(&format!(
            "{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n"
        )))
    };
    // 2^60 elements: refused from the header, nothing allocated.
    let e = header_err("<f4", "(1152921504606846976,)");
    assert!(e.contains("needs") || e.contains("too many"), "{e}");
    let e = header_err("<f4", "(4294967296, 4294967296, 16)");
    assert!(e.contains("too many"), "{e}");
    let e = header_err("<c8", "(2,)");
    assert!(e.contains("dtype"), "{e}");
    let e = header_err("O", "(2,)");
    assert!(e.contains("dtype"), "{e}");
    let e = header_err("<f4", "(3,)");
    assert!(e.contains("16"), "size mismatch names the real size: {e}");
    let mut b = good.clone();
    b[1] = b'X';
    assert!(err(b).contains("magic"));
    let mut b = good.clone();
    b[6] = 9;
    assert!(err(b).contains("version"));
    // A header length pointing past the end.
    let mut b = good.clone();
    b[8] = 0xff;
    b[9] = 0xff;
    assert!(err(b).contains("truncated"));
    // Not UTF-8 in the header.
    let mut b = good.clone();
    b[12] = 0xff;
    err(b);
    // Trailing garbage.
    let mut b = good.clone();
    b.push(0);
    err(b);
}

#[test]
fn hostile_npz_archives() {
    let good = std::fs::read(goldens().join("cls_small/weights.npz")).unwrap();
    let parse = |b: &[u8]| {
        Npz::from_bytes(b.to_vec(), Path::new("h.npz"))
            .and_then(|z| z.names().iter().try_for_each(|n| z.read(n).map(drop)))
            .is_ok()
    };
    assert_all_truncations_fail(&good, parse);
    // Flip every byte of a small archive in turn: any outcome but a panic is fine,
    // and CRC-32 catches data corruption.
    let small = zip_stored(&[(
        "a.npy".into(),
        npy_bytes(&[3], &[1.0f32, 2.0, 3.0]).unwrap(),
    )])
    .unwrap();
    for i in 0..small.len() {
        let mut b = small.clone();
        b[i] ^= 0x55;
        let _ = parse(&b);
    }
    let mut b = small.clone();
    let data_at = 30 + "a.npy".len() + 128 + 4; // inside the float data
    b[data_at] ^= 1;
    let e = Npz::from_bytes(b, Path::new("h.npz"))
        .unwrap()
        .read("a")
        .unwrap_err();
    assert!(e.to_string().contains("CRC"), "{e}");
    // A central directory claiming 65535 entries in a few bytes.
    let mut b = small.clone();
    let n = b.len();
    b[n - 12..n - 10].copy_from_slice(&0xFFFEu16.to_le_bytes());
    b[n - 14..n - 12].copy_from_slice(&0xFFFEu16.to_le_bytes());
    assert!(Npz::from_bytes(b, Path::new("h.npz")).is_err());
    assert!(Npz::from_bytes(b"PK\x05\x06".to_vec(), Path::new("h.npz")).is_err());
    assert!(Npz::from_bytes(vec![0; 100], Path::new("h.npz")).is_err());
}

/// A one-entry zip whose entry is deflated, with a chosen declared size.
fn deflated_zip(name: &str, payload: &[u8], declared: Option<u32>) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(payload).unwrap();
    let comp = enc.finish().unwrap();
    let mut crc = flate2::Crc::new();
    crc.update(payload);
    // Start from a stored archive of the compressed bytes, then patch the method,
    // CRC and uncompressed size in both headers.
    let mut z = zip_stored(&[(name.into(), comp.clone())]).unwrap();
    let size = declared.unwrap_or(payload.len() as u32);
    let cd = 30 + name.len() + comp.len();
    for (method_at, crc_at, size_at) in [(8, 14, 22), (cd + 10, cd + 16, cd + 24)] {
        z[method_at..method_at + 2].copy_from_slice(&8u16.to_le_bytes());
        z[crc_at..crc_at + 4].copy_from_slice(&crc.sum().to_le_bytes());
        z[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
    }
    z
}

#[test]
fn deflated_npz_entries_and_bombs() {
    let data: Vec<f32> = (0..1000).map(|i| (i % 7) as f32).collect();
    let npy = npy_bytes(&[10, 100], &data).unwrap();
    let z = deflated_zip("x.npy", &npy, None);
    let a = Npz::from_bytes(z, Path::new("d.npz"))
        .unwrap()
        .read("x")
        .unwrap();
    assert_eq!(a.data, NpyData::F32(data));
    // A 4 GiB claim from a few hundred compressed bytes is refused before inflating.
    let z = deflated_zip("x.npy", &npy, Some(u32::MAX));
    let e = Npz::from_bytes(z, Path::new("d.npz"))
        .unwrap()
        .read("x")
        .unwrap_err();
    assert!(e.to_string().contains("deflate"), "{e}");
    // A declared size smaller or larger than what the stream inflates to.
    for declared in [npy.len() as u32 - 4, npy.len() as u32 + 4] {
        let z = deflated_zip("x.npy", &npy, Some(declared));
        assert!(
            Npz::from_bytes(z, Path::new("d.npz"))
                .unwrap()
                .read("x")
                .is_err(),
            "{declared}"
        );
    }
    // An honest bomb-ish entry: 64 MB of zeros claimed by a header of 2^60 elements.
    let mut h = npy_bytes(&[1], &[0f32]).unwrap();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1152921504606846976,), }";
    let hl = h[8] as usize;
    let padded = format!("{header:<width$}", width = hl - 1) + "\n";
    h.truncate(10);
    h.extend_from_slice(padded.as_bytes());
    h.extend_from_slice(&vec![0u8; 1 << 20]);
    let z = deflated_zip("x.npy", &h, None);
    assert!(Npz::from_bytes(z, Path::new("d.npz"))
        .unwrap()
        .read("x")
        .is_err());
}

#[test]
fn hostile_safetensors_files() {
    let k = [1.0f32, 2.0, 3.0, 4.0];
    let good = safetensors_bytes(
        &[("layer0.kernel".into(), vec![2, 2], &k[..])],
        &HashMap::from([("classes".to_string(), "[\"a\"]".to_string())]),
    )
    .unwrap();
    let parse = |b: &[u8]| parse_safetensors(b, Path::new("h.safetensors")).is_ok();
    assert_all_truncations_fail(&good, parse);
    // Header length of 2^60.
    let mut b = good.clone();
    b[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(!parse(&b));
    // A tensor claiming 2^60 elements.
    let h = r#"{"t":{"dtype":"F32","shape":[1152921504606846976],"data_offsets":[0,16]}}"#;
    let mut b = (h.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&[0; 16]);
    assert!(!parse(&b));
    // Unsupported dtype.
    let h = r#"{"t":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}}"#;
    let mut b = (h.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&[0; 16]);
    let e = parse_safetensors(&b, Path::new("h.safetensors")).unwrap_err();
    assert!(e.to_string().contains("dtype"), "{e}");
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0xA5;
        let _ = parse(&b);
    }
    // Errors say what is wrong in words, never the safetensors crate's own
    // error names.
    let err = |b: &[u8]| {
        parse_safetensors(b, Path::new("h.safetensors"))
            .unwrap_err()
            .to_string()
    };
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(err(&huge).contains("more than 100 MB"), "{}", err(&huge));
    for cut in [good.len() - 3, 5, 9, 40] {
        let e = err(&good[..cut]);
        assert!(
            e.contains("h.safetensors") && e.contains("not a valid safetensors file"),
            "{e}"
        );
        for name in [
            "MetadataIncompleteBuffer",
            "HeaderTooLarge",
            "HeaderTooSmall",
            "InvalidHeader",
        ] {
            assert!(!e.contains(name), "{e}");
        }
    }
    assert!(err(&good[..good.len() - 3]).contains("truncated"));
    assert!(err(&good[..5]).contains("too short"));
}

#[test]
fn write_npz_of_plain_arrays_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npz");
    write_npz(
        &p,
        vec![
            (
                "x".into(),
                npy_bytes(&[2, 2], &[1.0f32, 2.0, 3.0, 4.0]).unwrap(),
            ),
            ("labels".into(), npy_bytes(&[2], &[1i64, 0]).unwrap()),
        ],
    )
    .unwrap();
    let z = Npz::open(&p).unwrap();
    assert_eq!(z.names(), vec!["x", "labels"]);
    assert_eq!(
        z.read("labels").unwrap().into_labels(&p, Some(2)).unwrap(),
        vec![1, 0]
    );
    assert!(matches!(
        Npz::open(&dir.path().join("missing.npz")),
        Err(Error::Io { .. })
    ));
}

fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b).unwrap();
    enc.finish().unwrap()
}

#[test]
fn mnist_layout_loads_plain_or_gzipped() {
    use cnn_runtime::data::{Mnist, Split};
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..3 * 28 * 28).map(|i| (i % 256) as u8).collect();
    let images = idx_bytes(0x803, &[3, 28, 28], &pixels);
    let labels = idx_bytes(0x801, &[3], &[7, 0, 9]);
    // Training files gzipped, test files plain.
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gzip(&images)).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte.gz"), gzip(&labels)).unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &images).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    for split in [Split::Train, Split::Test] {
        let d = Mnist::load(dir.path(), split).unwrap();
        assert_eq!(d.images.shape(), &[3, 28, 28, 1]);
        assert_eq!(d.labels, vec![7, 0, 9]);
        assert_eq!(d.images[[0, 0, 1, 0]], 1.0 / 255.0);
        assert_eq!(d.images[[0, 9, 3, 0]], 255.0 / 255.0); // flat index 255
        assert_eq!(d.classes.len(), 10);
    }
    // A gzipped file that stops early, and one whose header claims far more.
    let cut = gzip(&images[..images.len() - 5]);
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), cut).unwrap();
    let e = Mnist::load(dir.path(), Split::Train).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    let liar = gzip(&idx_bytes(0x803, &[1 << 28, 28, 28], &pixels));
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), liar).unwrap();
    assert!(matches!(
        Mnist::load(dir.path(), Split::Train),
        Err(Error::Format { .. })
    ));
    // Corrupt gzip stream.
    let mut bad = gzip(&images);
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    bad[n / 2 + 1] ^= 0xff;
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), bad).unwrap();
    assert!(Mnist::load(dir.path(), Split::Train).is_err());
    // Counts that disagree, and a label that is not a digit.
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte"),
        idx_bytes(0x801, &[2], &[1, 2]),
    )
    .unwrap();
    let e = Mnist::load(dir.path(), Split::Test).unwrap_err();
    assert!(
        e.to_string().contains("3 images") && e.to_string().contains("2 labels"),
        "{e}"
    );
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte"),
        idx_bytes(0x801, &[3], &[1, 12, 2]),
    )
    .unwrap();
    assert!(matches!(
        Mnist::load(dir.path(), Split::Test),
        Err(Error::Labels(_))
    ));
    let e = Mnist::load(dir.path().join("nope"), Split::Test).unwrap_err();
    assert!(e.to_string().contains("t10k-images-idx3-ubyte"), "{e}");
}

#[test]
fn the_real_mnist_test_set_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist");
    let d = cnn_runtime::data::Mnist::load(&dir, cnn_runtime::data::Split::Test).unwrap();
    assert_eq!(d.images.shape(), &[10000, 28, 28, 1]);
    let mut counts = [0usize; 10];
    d.labels.iter().for_each(|&l| counts[l] += 1);
    // Label counts published with the data set.
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let (lo, hi) = d
        .images
        .iter()
        .fold((1f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((lo, hi), (0.0, 1.0));
}

#[test]
fn data_sources_parse() {
    use cnn_runtime::data::{DataSource, DEFAULT_SHAPES};
    assert_eq!(
        "mnist:/a/b".parse::<DataSource>().unwrap(),
        DataSource::Mnist("/a/b".into())
    );
    assert_eq!(
        "folder:pics".parse::<DataSource>().unwrap(),
        DataSource::Folder("pics".into())
    );
    assert_eq!(
        "shapes".parse::<DataSource>().unwrap(),
        DataSource::Shapes(DEFAULT_SHAPES)
    );
    assert_eq!(
        "shapes:64".parse::<DataSource>().unwrap(),
        DataSource::Shapes(64)
    );
    for bad in [
        "mnist", "mnist:", "shapes:0", "shapes:x", "cifar:/d", "", "folder",
    ] {
        let e = bad.parse::<DataSource>().unwrap_err();
        assert!(e.to_string().contains("--data"), "{bad}: {e}");
    }
}

#[test]
fn a_failed_save_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let m = Params::new(CLS_SMALL);
    let p = dir.path().join("w.npz");
    save_weights(&m, &p, &WeightsMeta::default()).unwrap();
    let before = std::fs::read(&p).unwrap();
    // A directory where the file should go: the rename fails.
    let blocked = dir.path().join("blocked.npz");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("x"), b"keep the directory non-empty").unwrap();
    assert!(save_weights(&m, &blocked, &WeightsMeta::default()).is_err());
    assert!(save_weights(
        &m,
        &dir.path().join("no/such/dir/w.npz"),
        &WeightsMeta::default()
    )
    .is_err());
    assert_eq!(std::fs::read(&p).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn devices_and_directories_are_not_read() {
    let mut m = Params::new(CLS_SMALL);
    for p in ["/dev/zero", "/dev/null"] {
        let p = Path::new(p);
        if !p.exists() {
            continue;
        }
        assert!(read_npy(p).is_err());
        assert!(Npz::open(p).is_err());
        assert!(cnn_runtime::io::safetensors::read_safetensors(p).is_err());
        assert!(cnn_runtime::data::idx::read_idx(p).is_err());
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("w.npz");
    std::fs::create_dir(&d).unwrap();
    assert!(load_weights(&mut m, &d).is_err());
}

#[test]
fn corrupt_deflate_streams_are_format_errors() {
    let data: Vec<f32> = (0..500).map(|i| i as f32).collect();
    let npy = npy_bytes(&[500], &data).unwrap();
    let z = deflated_zip("x.npy", &npy, None);
    let data_at = 30 + "x.npy".len();
    let mut hits = 0;
    for k in 0..40 {
        let mut b = z.clone();
        b[data_at + 3 + k * 7] ^= 0xff;
        match Npz::from_bytes(b, Path::new("c.npz")).unwrap().read("x") {
            Err(Error::Format { .. }) => hits += 1,
            Err(e) => panic!("not a format error: {e:?}"),
            Ok(_) => panic!("corruption at {k} went unnoticed"),
        }
    }
    assert_eq!(hits, 40);
}

#[test]
fn every_oracle_archive_reads_like_ndarray_npy() {
    let mut archives = 0;
    let mut arrays = 0;
    for case in std::fs::read_dir(goldens()).unwrap() {
        let case = case.unwrap().path();
        for file in ["weights.npz", "io.npz"] {
            let path = case.join(file);
            if !path.is_file() {
                continue;
            }
            archives += 1;
            let ours = Npz::open(&path).unwrap();
            let mut theirs =
                ndarray_npy::NpzReader::new(std::fs::File::open(&path).unwrap()).unwrap();
            for name in ours.names() {
                let a = ours.read(name).unwrap();
                let entry = format!("{name}.npy");
                match a.dtype {
                    DType::F32 => {
                        let t: ndarray::ArrayD<f32> = theirs.by_name(&entry).unwrap();
                        assert_eq!(a.shape, t.shape(), "{} {name}", path.display());
                        let ours = a.into_f32(&path, name).unwrap();
                        // Bit for bit, NaN-safe.
                        assert!(
                            ours.iter()
                                .zip(t.iter())
                                .all(|(x, y)| x.to_bits() == y.to_bits()),
                            "{name}"
                        );
                    }
                    DType::I64 => {
                        let t: ndarray::ArrayD<i64> = theirs.by_name(&entry).unwrap();
                        assert_eq!(a.data, NpyData::I64(t.iter().copied().collect()), "{name}");
                    }
                    other => panic!("{}: unexpected dtype {other:?} for {name}", path.display()),
                }
                arrays += 1;
            }
        }
    }
    assert!(
        archives >= 80 && arrays > 400,
        "{archives} archives, {arrays} arrays"
    );
}
