//! Lines and columns of a source text: the one place that decides where a
//! line starts, for every line and column a diagnostic shows (the checker's
//! "on line N", the rendered source lines, the JSON positions, the corpus
//! test's first line).
//!
//! `\n`, `\r\n` and a lone `\r` (old Mac editors) each end a line, as editors
//! count them. A UTF-8 byte-order mark at the start of the text is not part
//! of line 1: editors do not show it, so counting it would shift every column
//! of the first line by one.

use std::ops::Range;

/// The byte-order mark some editors (Notepad, Excel exports) put first.
pub const BOM: char = '\u{feff}';

/// The length in bytes of a leading byte-order mark: 3, or 0 without one.
pub fn bom_len(src: &str) -> usize {
    if src.starts_with(BOM) {
        BOM.len_utf8()
    } else {
        0
    }
}

/// Where each line of a text starts.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of each line's first char, ascending; the first line
    /// starts after the byte-order mark.
    starts: Vec<usize>,
    /// The length of the text.
    len: usize,
}

impl LineIndex {
    /// Indexes the line starts of `src` (one pass over its bytes).
    pub fn new(src: &str) -> LineIndex {
        let b = src.as_bytes();
        let mut starts = vec![bom_len(src)];
        for (i, &c) in b.iter().enumerate() {
            // A `\r` followed by `\n` ends its line at the `\n`.
            if c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        LineIndex {
            starts,
            len: src.len(),
        }
    }

    /// The number of lines (a text ending in a line break has an empty last line).
    pub fn count(&self) -> usize {
        self.starts.len()
    }

    /// The 0-based index of the line holding byte `pos` (the bytes of a
    /// byte-order mark belong to the first line).
    pub fn index(&self, pos: usize) -> usize {
        self.starts.partition_point(|&s| s <= pos).saturating_sub(1)
    }

    /// The 1-based line holding byte `pos`.
    pub fn line(&self, pos: usize) -> usize {
        self.index(pos) + 1
    }

    /// The bytes of line `index` (0-based), its line break included; `None`
    /// past the last line.
    pub fn range(&self, index: usize) -> Option<Range<usize>> {
        let start = *self.starts.get(index)?;
        let end = self.starts.get(index + 1).copied().unwrap_or(self.len);
        Some(start..end)
    }

    /// 1-based line and column of byte `pos` of `src` (the text this index
    /// was built from); columns count chars. A `pos` inside a char counts as
    /// that char, past the end as the end.
    pub fn line_col(&self, src: &str, pos: usize) -> (usize, usize) {
        let mut pos = pos.min(src.len());
        while !src.is_char_boundary(pos) {
            pos -= 1;
        }
        let index = self.index(pos);
        let start = self.range(index).map_or(0, |r| r.start).min(pos);
        (index + 1, src[start..pos].chars().count() + 1)
    }
}

/// The lines of `src` without their line breaks, as [`str::lines`] gives them
/// but with a lone `\r` ending a line too and a leading byte-order mark left
/// out (and, as there, no empty line after a final line break).
pub fn lines(src: &str) -> impl Iterator<Item = &str> + '_ {
    let index = LineIndex::new(src);
    let count = if src.len() == bom_len(src) {
        0
    } else if src.ends_with(['\n', '\r']) {
        index.count() - 1
    } else {
        index.count()
    };
    (0..count).filter_map(move |i| {
        let r = index.range(i)?;
        Some(src[r].trim_end_matches('\n').trim_end_matches('\r'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_ending_and_a_bom() {
        let src = "\u{feff}a;\r\nbc;\rd;\ne";
        let ix = LineIndex::new(src);
        assert_eq!(ix.count(), 4);
        let at = |s: &str| src.find(s).unwrap();
        assert_eq!(ix.line_col(src, at("a")), (1, 1));
        assert_eq!(ix.line_col(src, 0), (1, 1));
        assert_eq!(ix.line_col(src, 1), (1, 1));
        assert_eq!(ix.line_col(src, at("c")), (2, 2));
        assert_eq!(ix.line_col(src, at("d")), (3, 1));
        assert_eq!(ix.line_col(src, at("e")), (4, 1));
        assert_eq!(ix.line_col(src, 999), (4, 2));
        // The `\r` and `\n` of a `\r\n` both end line 1.
        assert_eq!(ix.line(at("\r\n")), 1);
        assert_eq!(ix.line(at("\r\n") + 1), 1);
        assert_eq!(lines(src).collect::<Vec<_>>(), ["a;", "bc;", "d;", "e"]);
    }

    #[test]
    fn lines_as_str_lines_gives_them() {
        for src in ["", "a", "a\n", "a\n\nb\n", "\n", "a\r\n\r\n"] {
            let want: Vec<&str> = src.lines().collect();
            assert_eq!(lines(src).collect::<Vec<_>>(), want, "{src:?}");
        }
        assert_eq!(lines("a\r\r").collect::<Vec<_>>(), ["a", ""]);
        assert_eq!(lines("\u{feff}").count(), 0);
        assert_eq!(lines("\u{feff}// x\ry").collect::<Vec<_>>(), ["// x", "y"]);
    }
}
