//! Listing recordings without their key: the metadata line and chunk
//! headers only.
//! Must never: need or touch a key.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::layout::*;
use crate::{error::*, format::*, seal::*};

// ---------------------------------------------------------------------------
// Listing (no key) and export

/// What [`scan`] learns from a file without its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkScan {
    pub chunks: u64,
    pub complete: bool,
    pub trailing_bytes: u64,
}

/// Reads the metadata line of `path` and walks its chunk headers (no decryption).
pub fn scan(path: &Path) -> Result<(RecordingMeta, ChunkScan), RecordingError> {
    let io_err = |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let mut head = Vec::with_capacity(MAX_META_LINE);
    (&file)
        .take(MAX_META_LINE as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let (line, meta_len) = parse_meta_line(&head)?;
    let mut framing = Framing::default();
    let mut pos = meta_len as u64;
    let mut trailing_bytes = 0;
    let mut hbuf = [0u8; CHUNK_HEADER_LEN];
    while pos < size {
        let left = size - pos;
        if left < CHUNK_HEADER_LEN as u64 {
            framing.trailing(left)?;
            trailing_bytes = left;
            break;
        }
        file.read_exact_at(&mut hbuf, pos).map_err(io_err)?;
        let Some(h) = ChunkHeader::parse(&hbuf) else {
            break;
        };
        framing.check(&h)?;
        let total = (CHUNK_HEADER_LEN + h.body_len) as u64;
        if left < total {
            trailing_bytes = left;
            break;
        }
        framing.accept(&h);
        pos += total;
    }
    Ok((
        line.meta,
        ChunkScan {
            chunks: framing.next_index,
            complete: framing.final_seen.is_some(),
            trailing_bytes,
        },
    ))
}

/// One recording as [`list`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRecording {
    pub path: PathBuf,
    pub meta: RecordingMeta,
    pub size: u64,
    /// The file's modification time (its last chunk), Unix ms.
    pub modified_ms: Option<u64>,
    pub scan: ChunkScan,
}

impl ListedRecording {
    /// For a complete recording, from its start to its last write.
    pub fn duration_ms(&self) -> Option<u64> {
        if !self.scan.complete {
            return None;
        }
        Some(self.modified_ms?.saturating_sub(self.meta.started_ms))
    }
}

/// A file in the recordings directory that [`list`] could not read.
#[derive(Debug)]
pub struct UnreadableRecording {
    pub path: PathBuf,
    pub error: RecordingError,
}

/// Every `*.cast.sealed` file in `dir` (none if `dir` does not exist), oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<Result<ListedRecording, UnreadableRecording>>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(FILE_SUFFIX) {
            continue;
        }
        let path = entry.path();
        let md = match entry.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(source) => {
                out.push(Err(UnreadableRecording {
                    error: RecordingError::Io {
                        path: path.clone(),
                        source,
                    },
                    path,
                }));
                continue;
            }
        };
        let modified_ms = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        out.push(match scan(&path) {
            Ok((meta, scan)) => Ok(ListedRecording {
                path,
                meta,
                size: md.len(),
                modified_ms,
                scan,
            }),
            Err(error) => Err(UnreadableRecording { path, error }),
        });
    }
    out.sort_by_key(|r| match r {
        Ok(l) => (0, l.meta.started_ms, l.path.clone()),
        Err(u) => (1, 0, u.path.clone()),
    });
    Ok(out)
}
