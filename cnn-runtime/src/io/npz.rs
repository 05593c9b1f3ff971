//! NumPy `.npz` files: a zip archive with one `.npy` file per array.
//!
//! A small zip reader written for untrusted input rather than a general zip
//! library: it reads the central directory (zip64 included, as `np.savez` writes
//! it), accepts stored and deflated entries, bounds-checks every offset and size
//! against the real archive, refuses sizes that deflate cannot produce from the
//! compressed bytes (so a "zip bomb" is rejected before inflating), and checks
//! every entry's CRC-32. The writer stores entries uncompressed (no zip64), as the
//! oracle's files are.

use super::npy::{read_npy_from, NpyArray};
use crate::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const CDIR_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
/// Deflate cannot expand data by more than about 1032:1 (a 258-byte match per
/// 2 bits at best); a larger claimed ratio is a lie or a bomb.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// One entry of the central directory.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    method: u16,
    crc: u32,
    comp_size: u64,
    size: u64,
    /// Offset of the entry's data (after its local header) in the archive.
    data_start: u64,
}

/// An opened `.npz` archive, kept in memory.
#[derive(Debug)]
pub struct Npz {
    path: PathBuf,
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

impl Npz {
    /// Opens and indexes an archive. Fails on anything that is not a well-formed
    /// zip whose entries lie inside the file.
    pub fn open(path: &Path) -> Result<Npz> {
        let bytes = super::read_regular_file(path)?;
        Npz::from_bytes(bytes, path)
    }

    /// Indexes an archive held in memory (`path` names it in errors).
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Npz> {
        let entries = index(&bytes).map_err(|m| Error::format(path, m))?;
        Ok(Npz {
            path: path.to_path_buf(),
            bytes,
            entries,
        })
    }

    /// Array names, in archive order, without the `.npy` suffix.
    pub fn names(&self) -> Vec<&str> {
        self.entries
            .iter()
            .map(|e| e.name.strip_suffix(".npy").unwrap_or(&e.name))
            .collect()
    }

    /// Whether the archive holds array `name` (with or without `.npy`).
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    fn find(&self, name: &str) -> Option<&Entry> {
        let with = format!("{name}.npy");
        self.entries
            .iter()
            .find(|e| e.name == with)
            .or_else(|| self.entries.iter().find(|e| e.name == name))
    }

    /// The raw bytes of entry `name` (exact name), at most `max` of them; `None`
    /// when there is no such entry. For small non-array members such as `classes.json`.
    pub fn raw(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let Some(e) = self.entries.iter().find(|e| e.name == name) else {
            return Ok(None);
        };
        let epath = self.path.join(&e.name);
        if e.size > max {
            return Err(Error::format(
                &epath,
                format!("{} bytes is too large (max {max})", e.size),
            ));
        }
        let start = e.data_start as usize;
        let data = &self.bytes[start..start + e.comp_size as usize];
        let mut out = Vec::new();
        let res = match e.method {
            0 => {
                out.extend_from_slice(data);
                Ok(())
            }
            8 => flate2::read::DeflateDecoder::new(data)
                .take(max + 1)
                .read_to_end(&mut out)
                .map(|_| ()),
            m => {
                return Err(Error::format(
                    &epath,
                    format!("unsupported compression method {m}"),
                ))
            }
        };
        let mut crc = flate2::Crc::new();
        crc.update(&out);
        if res.is_err() || out.len() as u64 != e.size || crc.sum() != e.crc {
            return Err(Error::format(
                &epath,
                "corrupt entry (size or CRC-32 mismatch)",
            ));
        }
        Ok(Some(out))
    }

    /// Reads array `name` (with or without `.npy`).
    pub fn read(&self, name: &str) -> Result<NpyArray> {
        let e = self.find(name).ok_or_else(|| {
            Error::format(&self.path, format!("no array '{name}' in the archive"))
        })?;
        let epath = self.path.join(&e.name);
        let fmt = |m: String| Error::format(&epath, m);
        // Offsets were checked against the archive when it was indexed.
        let start = e.data_start as usize;
        let data = &self.bytes[start..start + e.comp_size as usize];
        match e.method {
            0 => {
                if e.comp_size != e.size {
                    return Err(fmt("stored entry with different sizes".into()));
                }
                let mut crc = flate2::Crc::new();
                crc.update(data);
                if crc.sum() != e.crc {
                    return Err(fmt("CRC-32 mismatch: the entry is corrupt".into()));
                }
                read_npy_from(data, e.size, &epath)
            }
            8 => {
                if e.size
                    > e.comp_size
                        .saturating_mul(MAX_DEFLATE_RATIO)
                        .saturating_add(1024)
                {
                    return Err(fmt(format!(
                        "claims {} bytes from {} compressed: more than deflate can produce",
                        e.size, e.comp_size
                    )));
                }
                let mut r =
                    flate2::CrcReader::new(flate2::read::DeflateDecoder::new(data).take(e.size));
                let arr = read_npy_from(&mut r, e.size, &epath)?;
                // Anything left over in the stream beyond the declared size is an error too.
                let mut extra = [0u8; 1];
                let more = r.get_mut().get_mut().read(&mut extra).unwrap_or(0);
                if more != 0 {
                    return Err(fmt("entry inflates to more than its declared size".into()));
                }
                if r.crc().sum() != e.crc {
                    return Err(fmt("CRC-32 mismatch: the entry is corrupt".into()));
                }
                Ok(arr)
            }
            m => Err(fmt(format!(
                "unsupported compression method {m} (only stored and deflate)"
            ))),
        }
    }
}

/// Finds the end-of-central-directory record and reads every entry.
fn index(b: &[u8]) -> std::result::Result<Vec<Entry>, String> {
    let n = b.len();
    if n < 22 {
        return Err(format!("not a zip archive: only {n} bytes"));
    }
    // The EOCD is the last 22 bytes plus a comment of at most 65535 bytes.
    let lowest = n.saturating_sub(22 + 0xFFFF);
    let eocd = (lowest..=n - 22)
        .rev()
        .find(|&i| {
            u32_at(b, i) == Some(EOCD_SIG) && i + 22 + u16_at(b, i + 20).unwrap_or(0) as usize == n
        })
        .or_else(|| {
            (lowest..=n - 22)
                .rev()
                .find(|&i| u32_at(b, i) == Some(EOCD_SIG))
        })
        .ok_or("not a zip archive: no end-of-central-directory record")?;
    let bad = || "truncated or corrupt end-of-central-directory record".to_string();
    let disk = u16_at(b, eocd + 4).ok_or_else(bad)?;
    let mut count = u16_at(b, eocd + 10).ok_or_else(bad)? as u64;
    let mut cd_size = u32_at(b, eocd + 12).ok_or_else(bad)? as u64;
    let mut cd_off = u32_at(b, eocd + 16).ok_or_else(bad)? as u64;
    if disk != 0 {
        return Err("multi-disk archives are not supported".into());
    }
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_off == 0xFFFF_FFFF {
        // zip64: the locator sits right before the EOCD.
        let loc = eocd.checked_sub(20).ok_or("zip64 locator missing")?;
        if u32_at(b, loc) != Some(EOCD64_LOCATOR_SIG) {
            return Err("zip64 locator missing".into());
        }
        let rec = u64_at(b, loc + 8).ok_or("zip64 locator truncated")?;
        let rec = usize::try_from(rec)
            .ok()
            .filter(|&r| r < n)
            .ok_or("zip64 record out of the file")?;
        if u32_at(b, rec) != Some(EOCD64_SIG) {
            return Err("zip64 end record missing".into());
        }
        count = u64_at(b, rec + 32).ok_or("zip64 record truncated")?;
        cd_size = u64_at(b, rec + 40).ok_or("zip64 record truncated")?;
        cd_off = u64_at(b, rec + 48).ok_or("zip64 record truncated")?;
    }
    let cd_end = cd_off
        .checked_add(cd_size)
        .filter(|&e| e <= n as u64)
        .ok_or_else(|| {
            format!(
                "central directory ({cd_size} bytes at {cd_off}) lies outside the {n}-byte file"
            )
        })?;
    // Each entry takes at least 46 bytes: a count beyond that is a lie.
    if count > cd_size / 46 {
        return Err(format!(
            "claims {count} entries in a {cd_size}-byte central directory"
        ));
    }
    let mut entries = Vec::new();
    let mut p = cd_off as usize;
    for k in 0..count {
        let trunc = || format!("central directory entry {k} is truncated");
        if u32_at(b, p) != Some(CDIR_SIG) {
            return Err(format!("central directory entry {k} has a bad signature"));
        }
        let flags = u16_at(b, p + 8).ok_or_else(trunc)?;
        let method = u16_at(b, p + 10).ok_or_else(trunc)?;
        let crc = u32_at(b, p + 16).ok_or_else(trunc)?;
        let mut comp_size = u32_at(b, p + 20).ok_or_else(trunc)? as u64;
        let mut size = u32_at(b, p + 24).ok_or_else(trunc)? as u64;
        let name_len = u16_at(b, p + 28).ok_or_else(trunc)? as usize;
        let extra_len = u16_at(b, p + 30).ok_or_else(trunc)? as usize;
        let comment_len = u16_at(b, p + 32).ok_or_else(trunc)? as usize;
        let mut local = u32_at(b, p + 42).ok_or_else(trunc)? as u64;
        let name_start = p + 46;
        let extra_start = name_start + name_len;
        let next = extra_start + extra_len + comment_len;
        if next as u64 > cd_end {
            return Err(trunc());
        }
        if flags & 1 != 0 {
            return Err(format!("entry {k} is encrypted"));
        }
        let name = std::str::from_utf8(&b[name_start..extra_start])
            .map_err(|_| format!("entry {k} has a name that is not UTF-8"))?
            .to_string();
        // zip64 extra field: the 64-bit values replace the saturated 32-bit ones, in order.
        let mut q = extra_start;
        while q + 4 <= extra_start + extra_len {
            let id = u16_at(b, q).ok_or_else(trunc)?;
            let len = u16_at(b, q + 2).ok_or_else(trunc)? as usize;
            let body = q + 4;
            if body + len > extra_start + extra_len {
                return Err(format!("entry '{name}' has a truncated extra field"));
            }
            if id == 1 {
                let mut r = body;
                let mut take = |v: &mut u64| -> std::result::Result<(), String> {
                    if *v == 0xFFFF_FFFF {
                        if r + 8 > body + len {
                            return Err(format!("entry '{name}' has a short zip64 field"));
                        }
                        *v = u64_at(b, r).ok_or_else(trunc)?;
                        r += 8;
                    }
                    Ok(())
                };
                take(&mut size)?;
                take(&mut comp_size)?;
                take(&mut local)?;
            }
            q = body + len;
        }
        // The local header repeats the name and has its own extra field; the data follows.
        let l = usize::try_from(local)
            .ok()
            .filter(|&l| l < n)
            .ok_or_else(|| {
                format!("entry '{name}': local header offset {local} is outside the file")
            })?;
        if u32_at(b, l) != Some(LOCAL_SIG) {
            return Err(format!("entry '{name}': bad local header signature"));
        }
        let lname = u16_at(b, l + 26).ok_or_else(trunc)? as u64;
        let lextra = u16_at(b, l + 28).ok_or_else(trunc)? as u64;
        let data_start = local + 30 + lname + lextra;
        if !matches!(data_start.checked_add(comp_size), Some(e) if e <= n as u64) {
            return Err(format!(
                "entry '{name}': {comp_size} bytes at offset {data_start} run past the end of the {n}-byte file"
            ));
        }
        entries.push(Entry {
            name,
            method,
            crc,
            comp_size,
            size,
            data_start,
        });
        p = next;
    }
    Ok(entries)
}

/// Builds a zip archive with the given `(entry name, bytes)` pairs, stored
/// uncompressed, timestamps 1980-01-01 00:00, no zip64.
pub fn zip_stored(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let too_big =
        || Error::Invalid("npz: archive over 4 GiB (zip64 writing is not supported)".into());
    let mut out = Vec::new();
    let mut cdir = Vec::new();
    const DOS_DATE_1980_01_01: u16 = (1 << 5) | 1;
    for (name, data) in entries {
        let offset = u32::try_from(out.len()).map_err(|_| too_big())?;
        let size = u32::try_from(data.len()).map_err(|_| too_big())?;
        let name_len = u16::try_from(name.len())
            .map_err(|_| Error::Invalid(format!("npz: entry name too long: {name}")))?;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum();
        // local header
        out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&DOS_DATE_1980_01_01.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // central directory entry
        cdir.extend_from_slice(&CDIR_SIG.to_le_bytes());
        cdir.extend_from_slice(&20u16.to_le_bytes()); // made by
        cdir.extend_from_slice(&20u16.to_le_bytes()); // needed
        cdir.extend_from_slice(&0u16.to_le_bytes());
        cdir.extend_from_slice(&0u16.to_le_bytes());
        cdir.extend_from_slice(&0u16.to_le_bytes());
        cdir.extend_from_slice(&DOS_DATE_1980_01_01.to_le_bytes());
        cdir.extend_from_slice(&crc.to_le_bytes());
        cdir.extend_from_slice(&size.to_le_bytes());
        cdir.extend_from_slice(&size.to_le_bytes());
        cdir.extend_from_slice(&name_len.to_le_bytes());
        cdir.extend_from_slice(&[0u8; 12]); // extra, comment, disk, internal attr, external attr
        cdir.extend_from_slice(&offset.to_le_bytes());
        cdir.extend_from_slice(name.as_bytes());
    }
    let count = u16::try_from(entries.len())
        .map_err(|_| Error::Invalid("npz: more than 65535 arrays".into()))?;
    let cd_off = u32::try_from(out.len()).map_err(|_| too_big())?;
    let cd_size = u32::try_from(cdir.len()).map_err(|_| too_big())?;
    out.extend_from_slice(&cdir);
    out.extend_from_slice(&EOCD_SIG.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // disk numbers
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

/// Writes `.npz` file atomically from `(array name, .npy bytes)` pairs; each
/// entry is named `<name>.npy`.
pub fn write_npz(path: &Path, arrays: Vec<(String, Vec<u8>)>) -> Result<()> {
    let entries: Vec<(String, Vec<u8>)> = arrays
        .into_iter()
        .map(|(n, b)| (format!("{n}.npy"), b))
        .collect();
    let bytes = zip_stored(&entries)?;
    super::write_atomic(path, &bytes)
}
