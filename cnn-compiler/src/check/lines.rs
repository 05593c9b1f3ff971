//! Byte offset -> line number, for the "on line N" of messages.

/// Maps byte offsets to 1-based line numbers.
pub(super) struct Lines {
    /// Byte offset of each line's first char, ascending.
    starts: Vec<usize>,
}

impl Lines {
    /// Indexes the line starts of `src`.
    pub(super) fn new(src: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    /// The 1-based line holding byte `pos`.
    pub(super) fn line(&self, pos: usize) -> usize {
        match self.starts.binary_search(&pos) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}
