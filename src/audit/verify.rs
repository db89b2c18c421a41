//! Checking an audit file (`proto/audit.md` §6): every line a record, numbered
//! from 0 without gaps, each `prev` the hash before it, each `hash` what its
//! content hashes to. A torn line — a crash in the middle of a write — is told
//! apart from tampering: it must look like the start of a record and be either
//! the unterminated last line or the line right before the `started` record of
//! the next run. Pure, for outside bytes: never panics, refuses over-long lines
//! before parsing them.

use super::{Event, Record, GENESIS, MAX_LINE_BYTES};

/// A line that is no record but is explained by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// 1-based line number.
    pub line: usize,
    /// Its length in bytes.
    pub bytes: usize,
}

/// A file whose chain holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Every record, in order.
    pub records: Vec<Record>,
    /// Torn lines (crashes while writing), each followed by a restart or at the end.
    pub torn: Vec<Torn>,
}

impl Verified {
    /// `seq` and `hash` of the last record; `None` for an empty file.
    pub fn head(&self) -> Option<(u64, &str)> {
        self.records.last().map(|r| (r.seq, r.hash.as_str()))
    }
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Broken {
    /// A line in the middle is not a record and no restart follows it.
    #[error("line {line} (where seq {expected} should be): not an audit record")]
    NotARecord {
        /// 1-based line number.
        line: usize,
        /// The seq the line should have held.
        expected: u64,
    },
    /// A record out of sequence: records before it were removed or it was moved.
    #[error("line {line}, seq {found}: expected seq {expected} (records missing or reordered)")]
    Sequence {
        /// 1-based line number.
        line: usize,
        /// The seq the record should have.
        expected: u64,
        /// The seq it has.
        found: u64,
    },
    /// `prev` is not the previous record's hash: a record before it was replaced.
    #[error("line {line}, seq {seq}: prev is not the hash of the record before it")]
    Prev {
        /// 1-based line number.
        line: usize,
        /// Its seq.
        seq: u64,
    },
    /// `hash` does not match the record's content: the record was edited.
    #[error("line {line}, seq {seq}: hash does not match the record (edited)")]
    Hash {
        /// 1-based line number.
        line: usize,
        /// Its seq.
        seq: u64,
    },
    /// The node found the log cut short or rewritten when it started (an
    /// `anchor_mismatch` record).
    #[error(
        "line {line}, seq {seq}: the node found this log cut short or rewritten when it \
         started (its store's sealed anchor named seq {anchor})"
    )]
    Cut {
        /// 1-based line number of the `anchor_mismatch` record.
        line: usize,
        /// Its seq.
        seq: u64,
        /// The seq the anchor named (the log had reached it).
        anchor: u64,
    },
}

impl Broken {
    /// The 1-based line where the chain breaks.
    pub fn line(&self) -> usize {
        match self {
            Broken::NotARecord { line, .. }
            | Broken::Sequence { line, .. }
            | Broken::Prev { line, .. }
            | Broken::Hash { line, .. }
            | Broken::Cut { line, .. } => *line,
        }
    }
}

/// Parses one line as a record; `None` if it is not one (too long, not UTF-8, not
/// JSON of exactly the record's fields).
pub fn parse_line(line: &[u8]) -> Option<Record> {
    if line.len() > MAX_LINE_BYTES {
        return None;
    }
    serde_json::from_slice(line).ok()
}

/// Whether `line` can be what a crash left of a record: a non-empty prefix of a
/// record line (every record line starts with `{"seq":`), no longer than one.
fn could_be_torn(line: &[u8]) -> bool {
    const START: &[u8] = b"{\"seq\":";
    !line.is_empty()
        && line.len() <= MAX_LINE_BYTES
        && (line.starts_with(START) || START.starts_with(line))
}

/// Verifies a whole audit file.
pub fn verify(file: &[u8]) -> Result<Verified, Broken> {
    // A crash cuts a record short before its newline (each record and its newline
    // go out in one write), so a torn last line leaves the file unterminated.
    let terminated = file.ends_with(b"\n");
    let mut lines: Vec<&[u8]> = file.split(|b| *b == b'\n').collect();
    // A file ending in a newline splits into a last empty piece: no line.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let parsed: Vec<Option<Record>> = lines.iter().map(|l| parse_line(l)).collect();
    let mut out = Verified {
        records: Vec::new(),
        torn: Vec::new(),
    };
    let mut prev = GENESIS.to_owned();
    let mut expected = 0u64;
    for (i, rec) in parsed.iter().enumerate() {
        let line = i + 1;
        let Some(rec) = rec else {
            let explained = match parsed.get(i + 1) {
                None => !terminated,
                Some(Some(next)) => next.event == Event::Started,
                Some(None) => false,
            };
            if !explained || !could_be_torn(lines[i]) {
                return Err(Broken::NotARecord { line, expected });
            }
            out.torn.push(Torn {
                line,
                bytes: lines[i].len(),
            });
            continue;
        };
        if rec.seq != expected {
            return Err(Broken::Sequence {
                line,
                expected,
                found: rec.seq,
            });
        }
        if rec.prev != prev {
            return Err(Broken::Prev { line, seq: rec.seq });
        }
        if rec.computed_hash() != rec.hash {
            return Err(Broken::Hash { line, seq: rec.seq });
        }
        if rec.event == Event::AnchorMismatch {
            return Err(Broken::Cut {
                line,
                seq: rec.seq,
                anchor: rec.count.unwrap_or(0),
            });
        }
        prev.clone_from(&rec.hash);
        expected = rec.seq.saturating_add(1);
        out.records.push(rec.clone());
    }
    Ok(out)
}

/// Where a writer resumes: read from the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The last record (the chain goes on from it); `None`: start at seq 0.
    pub last: Option<Record>,
    /// The file does not end in a newline: a torn line (or a record whose newline
    /// was not written) must be terminated before appending.
    pub unterminated: bool,
    /// The last line is not a record (a crash while writing it).
    pub torn: bool,
}

/// Reads where to resume from the last bytes of a file (`tail`: at least the last
/// two lines, e.g. its last `2 * MAX_LINE_BYTES + 2` bytes).
pub fn resume_from_tail(tail: &[u8]) -> Resume {
    let unterminated = tail.last().is_some_and(|b| *b != b'\n');
    let body = tail.strip_suffix(b"\n").unwrap_or(tail);
    let mut lines = body.rsplit(|b| *b == b'\n');
    let last_line = lines.next().unwrap_or_default();
    if tail.is_empty() {
        return Resume {
            last: None,
            unterminated: false,
            torn: false,
        };
    }
    match parse_line(last_line) {
        Some(r) => Resume {
            last: Some(r),
            unterminated,
            torn: false,
        },
        None => Resume {
            last: lines.next().and_then(parse_line),
            unterminated,
            torn: true,
        },
    }
}
