//! Sealing "remember this device" material to a TPM 2.0, when one is there.
//!
//! The remembered unlock value is sealed as a TPM data object under the
//! owner hierarchy's storage key (an ECC P-256 primary made from the TPM's
//! own seed, so only this TPM can load the object); what is stored is the
//! object's public and encrypted private parts. A copy of the stored file
//! (another machine, a disk image, a backup) opens nothing without this TPM.
//!
//! Transports: the kernel's resource manager (`/dev/tpmrm0`, the default
//! when the broker can open it) or a software TPM's socket (`swtpm socket
//! --server type=unixio`), chosen with `GATEHOUSE_TPM`:
//! `device:PATH`, `swtpm:SOCKET`, or `off`. Commands and responses are the
//! TPM 2.0 wire format (Part 3 of the spec), marshaled here; empty password
//! authorization (the protection is the TPM binding and the group-only file,
//! not a TPM secret the same uid could also read).
//! Must never: store the value unsealed when a TPM was asked for, or treat a
//! TPM failure as "not remembered" silently (the caller says why).

use std::io::{Read, Write};
use std::path::PathBuf;

use zeroize::Zeroizing;

/// What a sealed value starts with in the store.
pub const SEALED_MAGIC: &[u8] = b"GHTPM1";
/// The largest value a TPM seals (MAX_SYM_DATA).
pub const MAX_SEALED: usize = 128;

const TPM_ST_NO_SESSIONS: u16 = 0x8001;
const TPM_ST_SESSIONS: u16 = 0x8002;
const TPM_RH_OWNER: u32 = 0x4000_0001;
const TPM_RS_PW: u32 = 0x4000_0009;
const CC_CREATE_PRIMARY: u32 = 0x0000_0131;
const CC_CREATE: u32 = 0x0000_0153;
const CC_LOAD: u32 = 0x0000_0157;
const CC_UNSEAL: u32 = 0x0000_015E;
const CC_FLUSH_CONTEXT: u32 = 0x0000_0165;
const ALG_ECC: u16 = 0x0023;
const ALG_KEYEDHASH: u16 = 0x0008;
const ALG_SHA256: u16 = 0x000B;
const ALG_AES: u16 = 0x0006;
const ALG_CFB: u16 = 0x0043;
const ALG_NULL: u16 = 0x0010;
const ECC_NIST_P256: u16 = 0x0003;
/// fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA | restricted | decrypt
const ATTR_STORAGE: u32 =
    (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 10) | (1 << 16) | (1 << 17);
/// fixedTPM | fixedParent | userWithAuth | noDA: sealed data that never leaves this TPM.
const ATTR_SEALED: u32 = (1 << 1) | (1 << 4) | (1 << 6) | (1 << 10);

/// Where the TPM is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmPath {
    /// A character device (`/dev/tpmrm0`).
    Device(PathBuf),
    /// A software TPM's data socket (`swtpm socket --server type=unixio`).
    Swtpm(PathBuf),
}

impl TpmPath {
    /// From `GATEHOUSE_TPM` (`device:PATH`, `swtpm:SOCKET`, `off`), else
    /// `/dev/tpmrm0` when it can be opened. `Err` for a malformed setting.
    pub fn from_env() -> Result<Option<TpmPath>, String> {
        match std::env::var("GATEHOUSE_TPM") {
            Ok(v) if v == "off" => Ok(None),
            Ok(v) => match v.split_once(':') {
                Some(("device", p)) if !p.is_empty() => Ok(Some(TpmPath::Device(p.into()))),
                Some(("swtpm", p)) if !p.is_empty() => Ok(Some(TpmPath::Swtpm(p.into()))),
                _ => Err(format!(
                    "GATEHOUSE_TPM={v:?}: expected device:PATH, swtpm:SOCKET or off"
                )),
            },
            Err(_) => {
                let dev = PathBuf::from("/dev/tpmrm0");
                let usable = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&dev)
                    .is_ok();
                Ok(usable.then_some(TpmPath::Device(dev)))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            TpmPath::Device(p) => format!("TPM {}", p.display()),
            TpmPath::Swtpm(p) => format!("software TPM {}", p.display()),
        }
    }
}

/// Why the TPM did not do it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TpmError {
    #[error("{0}: {1}")]
    Io(String, String),
    #[error("the TPM answered {command} with error 0x{code:08x}")]
    Tpm { command: &'static str, code: u32 },
    #[error("the TPM's answer to {0} is malformed")]
    Malformed(&'static str),
    #[error("the value to seal is {0} bytes; a TPM seals at most {MAX_SEALED}")]
    TooLarge(usize),
    #[error("the stored value is not a TPM-sealed object")]
    NotSealed,
}

enum Link {
    Device(std::fs::File),
    Socket(std::os::unix::net::UnixStream),
}

/// One connection to the TPM.
pub struct Tpm {
    link: Link,
    name: String,
}

impl Tpm {
    pub fn open(path: &TpmPath) -> Result<Tpm, TpmError> {
        let name = path.describe();
        let io = |e: std::io::Error| TpmError::Io(name.clone(), e.to_string());
        let link = match path {
            TpmPath::Device(p) => Link::Device(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(p)
                    .map_err(io)?,
            ),
            TpmPath::Swtpm(p) => {
                let s = std::os::unix::net::UnixStream::connect(p).map_err(io)?;
                s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                    .map_err(io)?;
                Link::Socket(s)
            }
        };
        Ok(Tpm { link, name })
    }

    /// Sends one command, returns the response's body after its header
    /// (the response code checked).
    fn transact(&mut self, command: &'static str, cmd: &[u8]) -> Result<Vec<u8>, TpmError> {
        let io = |e: std::io::Error| TpmError::Io(self.name.clone(), e.to_string());
        let mut resp = vec![0u8; 4096];
        let n = match &mut self.link {
            Link::Device(f) => {
                f.write_all(cmd).map_err(io)?;
                f.read(&mut resp).map_err(io)?
            }
            Link::Socket(s) => {
                s.write_all(cmd).map_err(io)?;
                s.read_exact(&mut resp[..10]).map_err(io)?;
                let size = u32::from_be_bytes([resp[2], resp[3], resp[4], resp[5]]) as usize;
                if !(10..=resp.len()).contains(&size) {
                    return Err(TpmError::Malformed(command));
                }
                s.read_exact(&mut resp[10..size]).map_err(io)?;
                size
            }
        };
        resp.truncate(n);
        if resp.len() < 10 {
            return Err(TpmError::Malformed(command));
        }
        let size = u32::from_be_bytes([resp[2], resp[3], resp[4], resp[5]]) as usize;
        let code = u32::from_be_bytes([resp[6], resp[7], resp[8], resp[9]]);
        if code != 0 {
            return Err(TpmError::Tpm { command, code });
        }
        if size != resp.len() {
            return Err(TpmError::Malformed(command));
        }
        Ok(resp.split_off(10))
    }

    /// The owner hierarchy's storage key (transient handle; flush it).
    fn primary(&mut self) -> Result<u32, TpmError> {
        let mut public = Vec::new();
        put_u16(&mut public, ALG_ECC);
        put_u16(&mut public, ALG_SHA256);
        put_u32(&mut public, ATTR_STORAGE);
        put_u16(&mut public, 0); // authPolicy
        put_u16(&mut public, ALG_AES);
        put_u16(&mut public, 128);
        put_u16(&mut public, ALG_CFB);
        put_u16(&mut public, ALG_NULL); // scheme
        put_u16(&mut public, ECC_NIST_P256);
        put_u16(&mut public, ALG_NULL); // kdf
        put_u16(&mut public, 0); // unique.x
        put_u16(&mut public, 0); // unique.y
        let mut params = Vec::new();
        put_sized(&mut params, &[0, 0, 0, 0]); // inSensitive: empty auth, no data
        put_sized(&mut params, &public);
        put_u16(&mut params, 0); // outsideInfo
        put_u32(&mut params, 0); // creationPCR
        let body = self.transact(
            "CreatePrimary",
            &command(CC_CREATE_PRIMARY, &[TPM_RH_OWNER], &params),
        )?;
        read_u32(&body, 0).ok_or(TpmError::Malformed("CreatePrimary"))
    }

    fn flush(&mut self, handle: u32) {
        let mut cmd = Vec::new();
        put_u16(&mut cmd, TPM_ST_NO_SESSIONS);
        put_u32(&mut cmd, 14);
        put_u32(&mut cmd, CC_FLUSH_CONTEXT);
        put_u32(&mut cmd, handle);
        let _ = self.transact("FlushContext", &cmd);
    }

    /// Seals `value` to this TPM: [`SEALED_MAGIC`] ‖ private ‖ public.
    pub fn seal(&mut self, value: &[u8]) -> Result<Vec<u8>, TpmError> {
        if value.len() > MAX_SEALED {
            return Err(TpmError::TooLarge(value.len()));
        }
        let parent = self.primary()?;
        let result = (|| {
            let mut sensitive = Zeroizing::new(Vec::new());
            put_u16(&mut sensitive, 0); // userAuth
            put_sized(&mut sensitive, value);
            let mut public = Vec::new();
            put_u16(&mut public, ALG_KEYEDHASH);
            put_u16(&mut public, ALG_SHA256);
            put_u32(&mut public, ATTR_SEALED);
            put_u16(&mut public, 0); // authPolicy
            put_u16(&mut public, ALG_NULL); // keyedhash scheme
            put_u16(&mut public, 0); // unique
            let mut params = Zeroizing::new(Vec::new());
            put_sized(&mut params, &sensitive);
            put_sized(&mut params, &public);
            put_u16(&mut params, 0);
            put_u32(&mut params, 0);
            let body = self.transact("Create", &command(CC_CREATE, &[parent], &params))?;
            // parameterSize, then outPrivate and outPublic (each sized).
            let (private, rest) =
                take_sized(&body[4.min(body.len())..]).ok_or(TpmError::Malformed("Create"))?;
            let (public, _) = take_sized(rest).ok_or(TpmError::Malformed("Create"))?;
            let mut out = SEALED_MAGIC.to_vec();
            put_sized(&mut out, private);
            put_sized(&mut out, public);
            Ok(out)
        })();
        self.flush(parent);
        result
    }

    /// Opens what [`Tpm::seal`] made on this TPM.
    pub fn unseal(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        let rest = sealed
            .strip_prefix(SEALED_MAGIC)
            .ok_or(TpmError::NotSealed)?;
        let (private, rest) = take_sized(rest).ok_or(TpmError::NotSealed)?;
        let (public, rest) = take_sized(rest).ok_or(TpmError::NotSealed)?;
        if !rest.is_empty() {
            return Err(TpmError::NotSealed);
        }
        let parent = self.primary()?;
        let loaded = (|| {
            let mut params = Vec::new();
            put_sized(&mut params, private);
            put_sized(&mut params, public);
            let body = self.transact("Load", &command(CC_LOAD, &[parent], &params))?;
            read_u32(&body, 0).ok_or(TpmError::Malformed("Load"))
        })();
        self.flush(parent);
        let item = loaded?;
        let result = (|| {
            let body = Zeroizing::new(self.transact("Unseal", &command(CC_UNSEAL, &[item], &[]))?);
            let (data, _) =
                take_sized(&body[4.min(body.len())..]).ok_or(TpmError::Malformed("Unseal"))?;
            Ok(Zeroizing::new(data.to_vec()))
        })();
        self.flush(item);
        result
    }
}

/// A command with `handles`, one empty password session per handle, and
/// `params`.
fn command(code: u32, handles: &[u32], params: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut auth = Vec::new();
    for _ in handles {
        put_u32(&mut auth, TPM_RS_PW);
        put_u16(&mut auth, 0); // nonce
        auth.push(0); // attributes
        put_u16(&mut auth, 0); // hmac: the empty password
    }
    let mut cmd = Zeroizing::new(Vec::with_capacity(64 + params.len()));
    put_u16(&mut cmd, TPM_ST_SESSIONS);
    put_u32(&mut cmd, 0); // size, below
    put_u32(&mut cmd, code);
    for h in handles {
        put_u32(&mut cmd, *h);
    }
    put_u32(&mut cmd, auth.len() as u32);
    cmd.extend_from_slice(&auth);
    cmd.extend_from_slice(params);
    let size = (cmd.len() as u32).to_be_bytes();
    cmd[2..6].copy_from_slice(&size);
    cmd
}

fn put_u16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}

fn put_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_be_bytes());
}

/// A TPM2B: u16 size ‖ bytes.
fn put_sized(v: &mut Vec<u8>, b: &[u8]) {
    put_u16(v, b.len() as u16);
    v.extend_from_slice(b);
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A TPM2B's bytes and what follows it.
fn take_sized(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u16::from_be_bytes(b.get(..2)?.try_into().ok()?) as usize;
    let body = b.get(2..2 + n)?;
    Some((body, &b[2 + n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_marshaled_as_the_spec_says() {
        // TPM2_Unseal on handle 0x80000001 with one empty password session.
        let c = command(CC_UNSEAL, &[0x8000_0001], &[]);
        assert_eq!(
            c.as_slice(),
            &[
                0x80, 0x02, 0, 0, 0, 27, 0, 0, 0x01, 0x5E, 0x80, 0, 0, 1, 0, 0, 0, 9, 0x40, 0, 0,
                9, 0, 0, 0, 0, 0
            ]
        );
        assert_eq!(
            take_sized(&[0, 2, 7, 8, 9]),
            Some((&[7u8, 8][..], &[9u8][..]))
        );
        assert_eq!(take_sized(&[0, 3, 7]), None);
    }

    #[test]
    fn what_is_not_a_sealed_object_is_refused_before_the_tpm() {
        for bad in [&b"GHTPM"[..], b"plain-base64-value", b"GHTPM1\x00\x05ab"] {
            // No TPM is needed to refuse these: the parse fails first.
            let rest = bad.strip_prefix(SEALED_MAGIC);
            let parsed = rest.and_then(take_sized).and_then(|(_, r)| take_sized(r));
            assert!(parsed.is_none(), "{bad:?}");
        }
    }
}
