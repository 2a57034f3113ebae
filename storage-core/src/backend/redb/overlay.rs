//! A redb storage backend over a file opened read-only, whose writes land
//! in memory: redb can check the integrity of a file (and recover one a
//! crashed writer left) without the file changing. Read-only opens go
//! through it, so that they check the file as writable opens do.
//!
//! Locks go to the file, every one taken shared: the database over the
//! overlay coexists with readers elsewhere, is refused while another
//! process writes the file, and keeps writers out while it is open.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Bound;
use std::sync::Mutex;

use ::redb::backends::FileBackend;
use ::redb::{BackendError, StorageBackend};

/// Bytes per block of the in-memory layer.
const BLOCK: u64 = 4096;

/// A read-only file with an in-memory layer for what redb writes.
#[derive(Debug)]
pub(super) struct Overlay {
    file: FileBackend,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The length redb sees.
    len: u64,
    /// Bytes of the file still visible below the written blocks: the file's
    /// length, less what a shrinking `set_len` cut off.
    visible: u64,
    /// Written blocks by index, each `BLOCK` bytes.
    blocks: BTreeMap<u64, Box<[u8]>>,
}

impl Overlay {
    pub(super) fn new(file: File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        let file = FileBackend::new(file).map_err(std::io::Error::other)?;
        Ok(Self {
            file,
            state: Mutex::new(State {
                len,
                visible: len,
                blocks: BTreeMap::new(),
            }),
        })
    }

    /// The length of the file.
    pub(super) fn file_len(&self) -> u64 {
        self.lock().len
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fills `out` with the file's bytes at `offset`, zeros past `visible`.
    fn read_file(&self, offset: u64, out: &mut [u8], visible: u64) -> std::io::Result<()> {
        let from_file = visible.saturating_sub(offset).min(out.len() as u64) as usize;
        let (file_part, zeros) = out.split_at_mut(from_file);
        if !file_part.is_empty() {
            self.file.read(offset, file_part)?;
        }
        zeros.fill(0);
        Ok(())
    }

    /// Takes a shared lock where redb asks for any lock, without waiting:
    /// a conflict means another process writes the file.
    fn lock_now(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        if self.file.try_lock_shared_range(start, end)? {
            Ok(())
        } else {
            Err(BackendError::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another process has the file open for writing",
            )))
        }
    }
}

/// The blocks `offset..offset + len` touches, each as (block, start in it,
/// bytes in it, start in the caller's buffer).
fn chunks(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
    let end = offset + len as u64;
    let mut at = offset;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let block = at / BLOCK;
        let start = (at % BLOCK) as usize;
        let n = (BLOCK as usize - start).min((end - at) as usize);
        let chunk = (block, start, n, (at - offset) as usize);
        at += n as u64;
        Some(chunk)
    })
}

impl StorageBackend for Overlay {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.lock().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let state = self.lock();
        if offset
            .checked_add(out.len() as u64)
            .is_none_or(|end| end > state.len)
        {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        for (block, start, n, at) in chunks(offset, out.len()) {
            let dest = &mut out[at..at + n];
            match state.blocks.get(&block) {
                Some(bytes) => dest.copy_from_slice(&bytes[start..start + n]),
                None => self.read_file(block * BLOCK + start as u64, dest, state.visible)?,
            }
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut state = self.lock();
        if len < state.len {
            state.visible = state.visible.min(len);
            let first_gone = len.div_ceil(BLOCK);
            state.blocks.retain(|block, _| *block < first_gone);
            // New positions read as zeros: clear the tail of a cut block.
            if let Some(bytes) = state.blocks.get_mut(&(len / BLOCK)) {
                bytes[(len % BLOCK) as usize..].fill(0);
            }
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.lock_now(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.lock_now(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut state = self.lock();
        let visible = state.visible;
        for (block, start, n, at) in chunks(offset, data.len()) {
            let bytes = match state.blocks.entry(block) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    let mut bytes = vec![0; BLOCK as usize].into_boxed_slice();
                    self.read_file(block * BLOCK, &mut bytes, visible)?;
                    entry.insert(bytes)
                }
            };
            bytes[start..start + n].copy_from_slice(&data[at..at + n]);
        }
        let end = offset + data.len() as u64;
        state.len = state.len.max(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stay_in_memory_and_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let overlay = Overlay::new(File::open(&path).unwrap()).unwrap();
        overlay.write(4090, &[1; 20]).unwrap();
        let mut out = vec![0; 40];
        overlay.read(4080, &mut out).unwrap();
        assert_eq!(&out[..10], &[7; 10]);
        assert_eq!(&out[10..30], &[1; 20]);
        assert_eq!(&out[30..], &[7; 10]);
        // Shrinking then growing reads zeros, not the file.
        overlay.set_len(5000).unwrap();
        overlay.set_len(9000).unwrap();
        let mut tail = vec![9; 100];
        overlay.read(8000, &mut tail).unwrap();
        assert_eq!(tail, vec![0; 100]);
        overlay.read(4990, &mut out[..10]).unwrap();
        assert_eq!(&out[..10], &[7; 10]);
        assert!(overlay.read(8970, &mut out).is_err(), "past the end");
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 10_000]);
    }
}
