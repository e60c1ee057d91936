//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a
//! directory, `pg_ctl start` listening only on a private Unix socket
//! directory (no TCP), trust authentication on that socket, stopped
//! (`-m immediate`) on drop. PostgreSQL refuses to run as root, so a root
//! caller passes an unprivileged uid/gid to run it as.
//!
//! Owns: finding the PostgreSQL binaries (`/usr/lib/postgresql/N/bin`, the
//! highest N, or `$GATEHOUSE_PG_BINDIR`), the cluster's life, `createdb`, `pg_dump`.
//! Must never: listen on TCP, or be used by the server itself (it is test
//! and bench equipment).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// The superuser role the cluster is made with.
pub const ROLE: &str = "gatehouse";
/// The socket's port number (names the socket file only; no TCP).
pub const PORT: u16 = 5432;

pub struct PgCluster {
    bindir: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    run_as: Option<(u32, u32)>,
}

/// The directory holding `initdb`, `pg_ctl`, `pg_dump`.
pub fn bindir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("GATEHOUSE_PG_BINDIR") {
        return Ok(PathBuf::from(d));
    }
    let mut best: Option<(u32, PathBuf)> = None;
    for e in std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install the package postgresql (scripts/deps)")?
    {
        let e = e?;
        if let Some(v) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
            let bin = e.path().join("bin");
            if bin.join("initdb").exists() && best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, bin));
            }
        }
    }
    best.map(|(_, b)| b)
        .context("no PostgreSQL with initdb under /usr/lib/postgresql/*/bin")
}

impl PgCluster {
    /// Makes and starts a cluster in `dir/pg` (made, and `dir` opened to
    /// traversal, 0755). `run_as`: uid/gid to run PostgreSQL as (required as root).
    pub fn start(dir: &Path, run_as: Option<(u32, u32)>) -> Result<PgCluster> {
        if nix::unistd::Uid::effective().is_root() && run_as.is_none_or(|(u, _)| u == 0) {
            bail!("PostgreSQL does not run as root: pass an unprivileged uid/gid");
        }
        let bindir = bindir()?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        let root = dir.join("pg");
        let data = root.join("data");
        let sock = root.join("sock");
        std::fs::create_dir_all(&sock)?;
        std::fs::create_dir_all(&data)?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = run_as {
            for p in [&root, &data, &sock] {
                nix::unistd::chown(
                    p.as_path(),
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .with_context(|| format!("chown {}", p.display()))?;
            }
        }
        let c = PgCluster {
            bindir,
            data,
            sock,
            run_as,
        };
        c.run(
            "initdb",
            &[
                "-D",
                &c.data.to_string_lossy(),
                "-U",
                ROLE,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let opts = format!(
            "-k {} -c listen_addresses='' -p {PORT} -c max_connections=300",
            c.sock.display()
        );
        c.run(
            "pg_ctl",
            &[
                "-D",
                &c.data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &root.join("log").to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        Ok(c)
    }

    fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(bin));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir("/");
        cmd
    }

    fn run(&self, bin: &str, args: &[&str]) -> Result<Output> {
        let out = self
            .command(bin)
            .args(args)
            .output()
            .with_context(|| format!("running {bin}"))?;
        if !out.status.success() {
            bail!(
                "{bin} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }

    /// Creates database `name`.
    pub fn create_db(&self, name: &str) -> Result<()> {
        self.run(
            "createdb",
            &[
                "-h",
                &self.sock.to_string_lossy(),
                "-p",
                &PORT.to_string(),
                "-U",
                ROLE,
                name,
            ],
        )?;
        Ok(())
    }

    /// The URL of database `name` for `--db` (the socket directory as host).
    pub fn url(&self, name: &str) -> String {
        let host: String = self
            .sock
            .to_string_lossy()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b => format!("%{b:02X}"),
            })
            .collect();
        format!("postgres://{ROLE}@{host}:{PORT}/{name}")
    }

    /// `pg_dump` of database `name` (plain SQL, everything in it).
    pub fn dump(&self, name: &str) -> Result<Vec<u8>> {
        Ok(self
            .run(
                "pg_dump",
                &[
                    "-h",
                    &self.sock.to_string_lossy(),
                    "-p",
                    &PORT.to_string(),
                    "-U",
                    ROLE,
                    name,
                ],
            )?
            .stdout)
    }

    /// The cluster's data directory (for raw scans).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                &self.data.to_string_lossy(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}
