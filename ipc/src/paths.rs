//! Where one installation keeps its state and sockets (a *profile*).
//!
//! Owns: the directory layout — state (`…/state`, the broker's alone),
//! data (records, recordings), config, and the runtime directory with the
//! sockets — and creating those directories with safe modes (0700).
//! Must never: follow a runtime directory owned by another user or readable
//! by others.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Directory layout of one Gatehouse profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Profile root for data (records store, recordings, config).
    pub root: PathBuf,
    /// The broker's private state (wrapped keys, nonce log). Only the broker writes here.
    pub broker_state: PathBuf,
    /// Sockets and pid files (0700).
    pub runtime: PathBuf,
    /// Profile name, used to namespace keychain entries.
    pub profile: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot determine a home directory (set GATEHOUSE_HOME or HOME)")]
    NoHome,
    #[error("invalid profile name {0:?}: use letters, digits, '-' and '_' (max 64)")]
    BadProfile(String),
    #[error("{path}: {what}")]
    Unsafe { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Layout {
    /// Resolves the layout: `GATEHOUSE_HOME` wins; else `profile` under the
    /// user's XDG directories; else the default profile.
    ///
    /// With `GATEHOUSE_HOME=/x`: state in `/x/state`, sockets in `/x/run`,
    /// and, without `--profile`, the profile name `home-HASH` (`HASH`: 8 hex
    /// digits of `/x`), so two homes never share keychain entries (the
    /// keychain is per user, namespaced by profile name).
    /// With profile `NAME`: `$XDG_DATA_HOME/gatehouse/profiles/NAME` and
    /// `$XDG_RUNTIME_DIR/gatehouse-NAME` (or `/tmp/gatehouse-UID-NAME`).
    pub fn resolve(profile: Option<&str>) -> Result<Layout, LayoutError> {
        if let Some(home) = std::env::var_os("GATEHOUSE_HOME").filter(|h| !h.is_empty()) {
            return Layout::in_home(PathBuf::from(home), profile);
        }
        let name = profile.unwrap_or("default").to_string();
        check_profile_name(&name)?;
        let data_home = match std::env::var_os("XDG_DATA_HOME").filter(|h| !h.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(std::env::var_os("HOME").ok_or(LayoutError::NoHome)?)
                .join(".local/share"),
        };
        let uid = nix::unistd::getuid().as_raw();
        let run_base = match std::env::var_os("XDG_RUNTIME_DIR").filter(|h| !h.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from("/tmp"),
        };
        let (root, runtime) = if name == "default" {
            (
                data_home.join("gatehouse"),
                run_base.join(format!("gatehouse-{uid}")),
            )
        } else {
            (
                data_home.join("gatehouse/profiles").join(&name),
                run_base.join(format!("gatehouse-{uid}-{name}")),
            )
        };
        Ok(Layout::under(root, runtime, name))
    }

    /// A layout rooted at `root` with sockets in `runtime`.
    /// The layout of `GATEHOUSE_HOME=root` (see [`Layout::resolve`]).
    pub fn in_home(root: PathBuf, profile: Option<&str>) -> Result<Layout, LayoutError> {
        let name = match profile {
            Some(p) => p.to_string(),
            // `/x/` and `/x` name one home: hash the path's components.
            None => {
                let normal: PathBuf = root.components().collect();
                format!(
                    "home-{:08x}",
                    fnv1a32(normal.as_os_str().as_encoded_bytes())
                )
            }
        };
        check_profile_name(&name)?;
        Ok(Layout::under(root.clone(), root.join("run"), name))
    }

    pub fn under(root: PathBuf, runtime: PathBuf, profile: String) -> Layout {
        Layout {
            broker_state: root.join("state"),
            root,
            runtime,
            profile,
        }
    }

    pub fn socket(&self, name: &str) -> PathBuf {
        self.runtime.join(name)
    }

    /// Creates root, state and runtime directories (0700) and checks that the
    /// runtime directory is ours and closed to others.
    pub fn ensure(&self) -> Result<(), LayoutError> {
        for dir in [&self.root, &self.broker_state, &self.runtime] {
            make_private_dir(dir)?;
        }
        Ok(())
    }
}

/// FNV-1a (32 bits): a stable short tag for a path, not a security measure.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

fn check_profile_name(name: &str) -> Result<(), LayoutError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(LayoutError::BadProfile(name.to_string()))
    }
}

/// The privilege boundary's group-only state root of an install whose
/// binaries are in `bin_dir`: `/var/lib/gatehouse` for a system prefix
/// (`/usr`, `/usr/local`), else `<prefix>/var/lib/gatehouse`. The installer
/// makes it `root:gatehouse 0070`: the broker (running with the group) may
/// enter it, the user's own processes may not.
pub fn group_state_root(bin_dir: &Path) -> PathBuf {
    let prefix = bin_dir.parent().unwrap_or(Path::new("/"));
    if [Path::new("/usr"), Path::new("/usr/local"), Path::new("/")].contains(&prefix) {
        PathBuf::from("/var/lib/gatehouse")
    } else {
        prefix.join("var/lib/gatehouse")
    }
}

/// Opens this user's and profile's directory in the group-only state root
/// `root` (`root/<uid>/<profile>`, 0700, made if missing), after checking
/// that `root` is what the installer made: not ours, group `group`, no
/// access for others.
pub fn group_state_dir(root: &Path, group: u32, profile: &str) -> Result<PathBuf, LayoutError> {
    let meta = std::fs::metadata(root).map_err(|source| LayoutError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let uid = nix::unistd::geteuid().as_raw();
    if meta.uid() == uid || meta.gid() != group || meta.mode() & 0o007 != 0 {
        return Err(LayoutError::Unsafe {
            path: root.to_path_buf(),
            what: format!(
                "must be owned by another uid (root), group gid {group}, closed to others (is uid {} gid {} mode {:o}); run scripts/install again",
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            ),
        });
    }
    let dir = root.join(uid.to_string()).join(profile);
    make_private_dir(&dir)?;
    Ok(dir)
}

/// Creates `dir` (and parents) with mode 0700 if missing; refuses a directory
/// owned by another uid or open to group/others.
pub fn make_private_dir(dir: &Path) -> Result<(), LayoutError> {
    let io = |source| LayoutError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(LayoutError::Unsafe {
            path: dir.into(),
            what: "is not a directory".into(),
        });
    }
    let uid = nix::unistd::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(LayoutError::Unsafe {
            path: dir.into(),
            what: format!("owned by uid {}, not {uid}", meta.uid()),
        });
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// The local account's name (`uid1000` when it has none): who acts in
/// record owners and procedure runs, for the cli and the app alike.
pub fn local_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{}", uid.as_raw()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_homes_never_share_a_keychain_namespace() {
        let a = Layout::in_home("/tmp/gatehouse-demo-1".into(), None).unwrap();
        let b = Layout::in_home("/tmp/gatehouse-demo-2".into(), None).unwrap();
        let a2 = Layout::in_home("/tmp/gatehouse-demo-1/".into(), None).unwrap();
        assert_ne!(a.profile, b.profile);
        assert_eq!(
            a.profile, a2.profile,
            "stable for one home, trailing slash or not"
        );
        assert!(a.profile.starts_with("home-") && a.profile.len() == 13);
        let named = Layout::in_home("/tmp/x".into(), Some("lab")).unwrap();
        assert_eq!(named.profile, "lab");
        assert!(Layout::in_home("/tmp/x".into(), Some("no/slash")).is_err());
    }
}
