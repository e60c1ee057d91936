//! Destinations a keychain reference is bound to (like `ssh-add -h`).
//!
//! Owns: the record, per keychain entry used as a host credential, of the
//! destinations (`user@address:port`, with the host key the record pins:
//! `user@address:port key ALG SHA256:…`) it may be used for. The same
//! address, port and user behind another host key is another destination.
//! A destination bound without a host key (`keychain bind` without
//! `--host-key`, or a binding made before host keys were bound) takes the
//! host key of its first use. The first use of
//! an entry binds it to that destination; a use for any other destination is
//! refused until a person adds it with proof of presence
//! (`gatehouse keychain bind NAME USER@ADDRESS:PORT`, which asks for the
//! account passphrase). The file lives in the group-only state when the
//! privilege boundary is on (the user's other processes cannot add a
//! destination by editing it), else in the broker's state directory.
//! Must never: release a credential to a destination it is not bound to, or
//! add a destination without the caller having proved presence first.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gatehouse_ipc::broker::{BrokerError, Destination};

/// The bindings file and its contents.
pub struct DestinationBindings {
    path: PathBuf,
    bound: BTreeMap<String, Vec<String>>,
}

/// The text form of a destination, as bound and as logged.
pub fn destination_name(d: &Destination) -> String {
    let place = place_name(d);
    match &d.host_key {
        Some(key) => format!(
            "{place} key {}",
            key.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        None => place,
    }
}

/// `user@address:port`, without the host key.
fn place_name(d: &Destination) -> String {
    format!("{}@{}:{}", d.username, d.address, d.port)
}

impl DestinationBindings {
    /// Opens `path` (missing: no bindings yet). A file that does not parse
    /// is refused: an empty table would re-bind every entry on next use.
    pub fn open(path: PathBuf) -> Result<DestinationBindings, String> {
        let bound = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: {e} (remove it to bind afresh)", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(DestinationBindings { path, bound })
    }

    fn save(&self) -> Result<(), BrokerError> {
        let json = serde_json::to_vec_pretty(&self.bound)
            .map_err(|e| BrokerError::Internal(e.to_string()))?;
        crate::vault::write_atomic(&self.path, &json)
            .map_err(|e| BrokerError::Storage(format!("{}: {e}", self.path.display())))
    }

    /// The destinations `entry` is bound to.
    pub fn of(&self, entry: &str) -> &[String] {
        self.bound.get(entry).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Passes when `entry` is bound to `dest`; binds it on its first use;
    /// refuses any other destination.
    pub fn check_or_bind(&mut self, entry: &str, dest: &Destination) -> Result<(), BrokerError> {
        let name = destination_name(dest);
        let place = place_name(dest);
        match self.bound.get_mut(entry) {
            Some(list) if list.contains(&name) => Ok(()),
            // Bound without a host key: this first use pins it.
            Some(list) if dest.host_key.is_some() && list.contains(&place) => {
                list.retain(|n| *n != place);
                list.push(name);
                self.save()
            }
            Some(list) if !list.is_empty() => Err(BrokerError::NewDestination {
                entry: entry.to_string(),
                destination: name,
                bound: list.clone(),
            }),
            _ => {
                self.bound.insert(entry.to_string(), vec![name]);
                self.save()
            }
        }
    }

    /// Adds `dest` to `entry`'s destinations (the caller checked presence).
    pub fn bind(&mut self, entry: &str, dest: &Destination) -> Result<(), BrokerError> {
        let name = destination_name(dest);
        let list = self.bound.entry(entry.to_string()).or_default();
        if !list.contains(&name) {
            list.push(name);
        }
        self.save()
    }

    /// Forgets `entry`'s destinations (the entry was removed).
    pub fn forget(&mut self, entry: &str) -> Result<(), BrokerError> {
        if self.bound.remove(entry).is_some() {
            self.save()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(addr: &str, port: u16, user: &str) -> Destination {
        Destination {
            address: addr.into(),
            port,
            username: user.into(),
            host_key: None,
        }
    }

    fn keyed(key: &str) -> Destination {
        Destination {
            host_key: Some(key.into()),
            ..dest("10.0.0.1", 22, "admin")
        }
    }

    #[test]
    fn another_host_key_is_another_destination() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = DestinationBindings::open(dir.path().join("d.json")).unwrap();
        b.check_or_bind("r1", &keyed("ssh-ed25519 SHA256:one"))
            .unwrap();
        b.check_or_bind("r1", &keyed("ssh-ed25519  SHA256:one "))
            .unwrap();
        let e = b
            .check_or_bind("r1", &keyed("ssh-ed25519 SHA256:two"))
            .unwrap_err();
        assert!(matches!(e, BrokerError::NewDestination { .. }), "{e}");
        assert_eq!(
            b.of("r1"),
            ["admin@10.0.0.1:22 key ssh-ed25519 SHA256:one".to_string()]
        );
        b.bind("r1", &keyed("ssh-ed25519 SHA256:two")).unwrap();
        b.check_or_bind("r1", &keyed("ssh-ed25519 SHA256:two"))
            .unwrap();
        // Bound without a key: the first use pins it, then another is refused.
        b.bind("r2", &dest("10.0.0.1", 22, "admin")).unwrap();
        b.check_or_bind("r2", &keyed("ssh-ed25519 SHA256:one"))
            .unwrap();
        assert_eq!(
            b.of("r2"),
            ["admin@10.0.0.1:22 key ssh-ed25519 SHA256:one".to_string()]
        );
        assert!(
            b.check_or_bind("r2", &keyed("ssh-ed25519 SHA256:two"))
                .is_err()
        );
    }

    #[test]
    fn first_use_binds_and_any_other_destination_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("destinations.json");
        let mut b = DestinationBindings::open(path.clone()).unwrap();
        let home = dest("10.0.0.1", 22, "admin");
        b.check_or_bind("r1", &home).unwrap();
        b.check_or_bind("r1", &home).unwrap();
        for other in [
            dest("10.0.0.2", 22, "admin"),
            dest("10.0.0.1", 2222, "admin"),
            dest("10.0.0.1", 22, "root"),
        ] {
            let e = b.check_or_bind("r1", &other).unwrap_err();
            assert!(matches!(e, BrokerError::NewDestination { .. }), "{e}");
        }
        // Kept across restarts; a bound destination then passes.
        let mut again = DestinationBindings::open(path.clone()).unwrap();
        assert_eq!(again.of("r1"), ["admin@10.0.0.1:22".to_string()]);
        again.bind("r1", &dest("10.0.0.2", 22, "admin")).unwrap();
        again
            .check_or_bind("r1", &dest("10.0.0.2", 22, "admin"))
            .unwrap();
        again.forget("r1").unwrap();
        // A garbled file is refused, not read as "no bindings".
        std::fs::write(&path, b"{not json").unwrap();
        assert!(DestinationBindings::open(path).is_err());
    }
}
