//! STUB
use std::path::{Path, PathBuf};
pub struct RecordingMeta {
    pub id: String,
    pub host: String,
    pub user: String,
    pub kind: String,
    pub started_ms: u64,
    pub cols: u16,
    pub rows: u16,
}
pub struct RecordingWriter;
pub fn recordings_dir(l: &gatehouse_ipc::Layout) -> PathBuf {
    l.root.join("recordings")
}
impl RecordingWriter {
    pub fn create(
        _d: &Path,
        _id: &str,
        _k: zeroize::Zeroizing<[u8; 32]>,
        _m: RecordingMeta,
    ) -> std::io::Result<Self> {
        todo!()
    }
    pub fn output(&mut self, _d: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    pub fn resize(&mut self, _c: u16, _r: u16) -> std::io::Result<()> {
        Ok(())
    }
    pub fn marker(&mut self, _l: &str) -> std::io::Result<()> {
        Ok(())
    }
    pub fn exit(&mut self, _s: Option<u32>) -> std::io::Result<()> {
        Ok(())
    }
    pub fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    pub fn finish(self) -> std::io::Result<()> {
        Ok(())
    }
}
