//! STUB
use crate::ssh::Connection;
use std::time::Duration;
pub fn uses_shell(_v: gatehouse_policy::Vendor) -> bool {
    true
}
pub struct DeviceShell;
pub struct DeviceOutput {
    pub output: String,
    pub disconnected: bool,
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct DriverError;
impl DeviceShell {
    pub async fn open(
        _c: &Connection,
        _v: gatehouse_policy::Vendor,
        _t: Duration,
    ) -> Result<DeviceShell, DriverError> {
        todo!()
    }
    pub async fn run(&mut self, _c: &str, _t: Duration) -> Result<DeviceOutput, DriverError> {
        todo!()
    }
}
