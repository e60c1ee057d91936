//! Building and changing a host record from a person's input: the one
//! function behind `gatehouse host add/edit` and the desktop app's host
//! form ([`new_host`], [`apply`]).
//!
//! Owns: turning typed values (strings as typed, secrets already read) into
//! a [`Host`], naming the field of every input error
//! ([`RecordError::Invalid`] `field`). Must never: read stdin or argv,
//! touch the store or the broker (the caller then runs `Store::check` and
//! `Store::create/update`), or print a secret.

use crate::RecordError;
use crate::model::{Host, HttpProtocol, OnvifProtocol, Secret, SshProtocol, Vendor, keychain_ref};
use crate::validate::{check_address, parse_port};

/// A secret as a person gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretInput {
    /// A value to seal in the record.
    Literal(Secret),
    /// A keychain entry: `keychain:NAME` or just `NAME`.
    Reference(String),
}

impl SecretInput {
    /// `keychain:NAME` → a reference; anything else → a literal.
    pub fn parse(typed: &str) -> SecretInput {
        match keychain_ref(typed) {
            Some(name) => SecretInput::Reference(name.to_string()),
            None => SecretInput::Literal(Secret::new(typed.to_string())),
        }
    }

    fn into_secret(self) -> Secret {
        match self {
            SecretInput::Literal(s) => s,
            SecretInput::Reference(r) => Secret::keychain(keychain_ref(&r).unwrap_or(&r)),
        }
    }
}

/// What to set on a host; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct HostChanges {
    /// New display name (edit; `new_host` takes the name apart).
    pub name: Option<String>,
    pub address: Option<String>,
    pub port: Option<String>,
    pub folder: Option<String>,
    /// Replaces all tags.
    pub tags: Option<Vec<String>>,
    pub vendor: Option<String>,
    /// SSH username (enables SSH).
    pub ssh_user: Option<String>,
    pub password: Option<SecretInput>,
    /// Remove the SSH password (before `password` is applied).
    pub clear_password: bool,
    /// Store a literal `password` in the keychain as this entry instead;
    /// the record keeps only the reference.
    pub to_keychain: Option<String>,
    /// Private key: a path, or `keychain:NAME` (sealed either way).
    pub ssh_key: Option<String>,
    pub key_passphrase: Option<Secret>,
    /// Known SSH host key, e.g. `ssh-ed25519 SHA256:…`.
    pub host_key: Option<String>,
    /// HTTP/REST API port (enables HTTP).
    pub http_port: Option<String>,
    /// Plain HTTP instead of HTTPS.
    pub http_plain: bool,
    pub token: Option<SecretInput>,
    /// ONVIF username (enables ONVIF).
    pub onvif_user: Option<String>,
    pub onvif_port: Option<String>,
    pub onvif_password: Option<SecretInput>,
}

/// What applying changes left for the caller to do.
#[derive(Debug, Default)]
pub struct HostSecrets {
    /// A literal SSH password is stored (sealed) in the record.
    pub literal: bool,
    /// Store this literal in the keychain under this name once the record
    /// (which already holds the reference) has passed its checks.
    pub to_keychain: Option<(String, Secret)>,
}

/// The checks of a new host that need no secret and no broker: address
/// given and well-formed, port and vendor parse. Run before reading secrets.
pub fn precheck_new(c: &HostChanges) -> Result<(), RecordError> {
    let Some(address) = &c.address else {
        return Err(RecordError::Invalid {
            field: "address".into(),
            reason: "required (--address)".into(),
        });
    };
    if let Some(v) = &c.vendor {
        v.parse::<Vendor>()?;
    }
    if let Some(p) = &c.port {
        parse_port("port", p)?;
    }
    check_address("address", address)
}

/// A new host named `name` (SSH port 22, vendor `other` unless given).
pub fn new_host(name: &str, c: HostChanges) -> Result<(Host, HostSecrets), RecordError> {
    precheck_new(&c)?;
    let mut h = Host {
        name: name.to_string(),
        folder: String::new(),
        address: String::new(),
        port: 22,
        tags: Vec::new(),
        vendor: Vendor::Other,
        ssh: None,
        http: None,
        onvif: None,
    };
    let secrets = apply(&mut h, c)?;
    Ok((h, secrets))
}

/// Applies `c` to `h`.
pub fn apply(h: &mut Host, c: HostChanges) -> Result<HostSecrets, RecordError> {
    if let Some(n) = c.name {
        h.name = n;
    }
    if let Some(a) = c.address {
        h.address = a;
    }
    if let Some(p) = &c.port {
        h.port = parse_port("port", p)?;
    }
    if let Some(fo) = c.folder {
        h.folder = fo;
    }
    if let Some(t) = c.tags {
        h.tags = t;
    }
    if let Some(v) = &c.vendor {
        h.vendor = v.parse()?;
    }
    if c.clear_password
        && let Some(ssh) = h.ssh.as_mut()
    {
        ssh.password = None;
    }
    let wants_ssh = c.ssh_user.is_some()
        || c.password.is_some()
        || c.ssh_key.is_some()
        || c.key_passphrase.is_some()
        || c.host_key.is_some();
    if wants_ssh && h.ssh.is_none() {
        let Some(user) = &c.ssh_user else {
            return Err(RecordError::Invalid {
                field: "ssh.username".into(),
                reason: "SSH settings need an SSH user (--ssh-user)".into(),
            });
        };
        h.ssh = Some(SshProtocol {
            username: user.clone(),
            password: None,
            private_key_path: None,
            key_passphrase: None,
            host_key_fingerprint: None,
        });
    }
    let mut out = HostSecrets::default();
    if let Some(ssh) = h.ssh.as_mut() {
        if let Some(u) = c.ssh_user {
            ssh.username = u;
        }
        match (c.password, c.to_keychain) {
            (Some(SecretInput::Literal(pw)), Some(name)) => {
                ssh.password = Some(Secret::keychain(&name));
                out.to_keychain = Some((name, pw));
            }
            (Some(SecretInput::Literal(pw)), None) => {
                out.literal = true;
                ssh.password = Some(pw);
            }
            (Some(r @ SecretInput::Reference(_)), _) => ssh.password = Some(r.into_secret()),
            (None, Some(_)) => {
                return Err(RecordError::Invalid {
                    field: "ssh.password".into(),
                    reason: "moving to the keychain needs a password".into(),
                });
            }
            (None, None) => {}
        }
        if let Some(k) = c.ssh_key {
            ssh.private_key_path = Some(Secret::new(k));
        }
        if let Some(p) = c.key_passphrase {
            ssh.key_passphrase = Some(p);
        }
        if let Some(hk) = c.host_key {
            ssh.host_key_fingerprint = Some(hk);
        }
    }
    if c.http_port.is_some() || c.token.is_some() {
        let http = h.http.get_or_insert(HttpProtocol {
            port: if c.http_plain { 80 } else { 443 },
            tls: !c.http_plain,
            token: None,
        });
        if let Some(p) = &c.http_port {
            http.port = parse_port("http.port", p)?;
        }
        http.tls = !c.http_plain;
        if let Some(t) = c.token {
            http.token = Some(t.into_secret());
        }
    }
    if c.onvif_user.is_some() || c.onvif_port.is_some() || c.onvif_password.is_some() {
        if h.onvif.is_none() {
            let Some(user) = &c.onvif_user else {
                return Err(RecordError::Invalid {
                    field: "onvif.username".into(),
                    reason: "ONVIF settings need an ONVIF user (--onvif-user)".into(),
                });
            };
            h.onvif = Some(OnvifProtocol {
                port: 80,
                username: user.clone(),
                password: None,
            });
        }
        if let Some(o) = h.onvif.as_mut() {
            if let Some(u) = c.onvif_user {
                o.username = u;
            }
            if let Some(p) = &c.onvif_port {
                o.port = parse_port("onvif.port", p)?;
            }
            if let Some(p) = c.onvif_password {
                o.password = Some(p.into_secret());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: RecordError) -> String {
        match e {
            RecordError::Invalid { field, .. } => field,
            other => panic!("not Invalid: {other}"),
        }
    }

    #[test]
    fn new_host_names_the_bad_field() {
        let bad = |c: HostChanges| field_of(new_host("r1", c).unwrap_err());
        let ok = HostChanges {
            address: Some("192.0.2.1".into()),
            ..Default::default()
        };
        assert_eq!(bad(HostChanges::default()), "address");
        assert_eq!(
            bad(HostChanges {
                address: Some("not an address!".into()),
                ..Default::default()
            }),
            "address"
        );
        assert_eq!(
            bad(HostChanges {
                port: Some("70000".into()),
                ..ok.clone()
            }),
            "port"
        );
        assert_eq!(
            bad(HostChanges {
                vendor: Some("nokia-ish".into()),
                ..ok.clone()
            }),
            "vendor"
        );
        assert_eq!(
            bad(HostChanges {
                password: Some(SecretInput::parse("pw-not-real")),
                ..ok.clone()
            }),
            "ssh.username"
        );
        let (h, s) = new_host(
            "r1",
            HostChanges {
                ssh_user: Some("admin".into()),
                password: Some(SecretInput::parse("keychain:r1-pw")),
                ..ok
            },
        )
        .unwrap();
        assert!(!s.literal);
        let ssh = h.ssh.unwrap();
        assert_eq!(ssh.password.unwrap().keychain_ref(), Some("r1-pw"));
        assert_eq!(h.port, 22);
    }

    #[test]
    fn to_keychain_keeps_only_the_reference() {
        let (h, s) = new_host(
            "r1",
            HostChanges {
                address: Some("r1.example".into()),
                ssh_user: Some("admin".into()),
                password: Some(SecretInput::parse("literal-test-value")),
                to_keychain: Some("r1".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            h.ssh.unwrap().password.unwrap().expose(),
            "keychain:r1",
            "the record holds the reference"
        );
        let (name, pw) = s.to_keychain.unwrap();
        assert_eq!((name.as_str(), pw.expose()), ("r1", "literal-test-value"));
    }
}
