//! "Remember this device" sealed to a TPM 2.0: a real software TPM (`swtpm
//! socket`, from the distribution; `scripts/deps` installs it) started by
//! the test as the test user.
//!
//! The broker's TPM code seals and unseals on that TPM; a second TPM (another
//! machine) cannot unseal what the first sealed, nor can anything with one
//! bit changed; the real broker, with `GATEHOUSE_TPM=swtpm:SOCKET`, keeps
//! the remembered material sealed (`status` says so), signs in with it after
//! a restart, and does not with another TPM or with none.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_broker::tpm::{Tpm, TpmError, TpmPath};
use gatehouse_tests::ChildGuard;
use gatehouse_tests::broker::{BrokerFixture, Options};

const PASSPHRASE: &str = "tpm-test-passphrase";

/// A software TPM with its own state (its own seeds: another machine).
struct Swtpm {
    _child: ChildGuard,
    sock: PathBuf,
}

fn swtpm(f: &BrokerFixture, name: &str) -> Result<Swtpm> {
    let dir = f.scratch.user_dir(name)?;
    let sock = dir.join("sock");
    let mut c = f.scratch.command("swtpm");
    c.args(["socket", "--tpm2", "--tpmstate"])
        .arg(format!("dir={}", dir.display()))
        .arg("--server")
        .arg(format!("type=unixio,path={}", sock.display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}", dir.join("ctrl").display()))
        .args(["--flags", "startup-clear,not-need-init"]);
    let mut child = ChildGuard::spawn(&mut c).context("swtpm (scripts/deps installs it)")?;
    gatehouse_tests::proc::wait_until("swtpm socket", Duration::from_secs(15), || {
        if let Some(s) = child.has_exited()? {
            bail!("swtpm exited: {s}");
        }
        Ok(sock.exists())
    })?;
    Ok(Swtpm {
        _child: child,
        sock,
    })
}

fn path(t: &Swtpm) -> TpmPath {
    TpmPath::Swtpm(t.sock.clone())
}

#[test]
fn sealed_material_opens_only_on_its_own_tpm_and_unchanged() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    let (a, b) = (swtpm(&f, "tpm-a")?, swtpm(&f, "tpm-b")?);
    let value = b"obviously-fake-remembered-unlock-value-0123456789";
    let sealed = Tpm::open(&path(&a))?.seal(value)?;
    assert!(sealed.starts_with(gatehouse_broker::tpm::SEALED_MAGIC));
    assert!(
        !sealed.windows(value.len()).any(|w| w == value),
        "the value is in the sealed blob"
    );
    assert_eq!(Tpm::open(&path(&a))?.unseal(&sealed)?.as_slice(), value);
    // Another TPM (its own seeds) cannot load it.
    let other = Tpm::open(&path(&b))?.unseal(&sealed);
    assert!(
        matches!(
            other,
            Err(TpmError::Tpm {
                command: "Load",
                ..
            })
        ),
        "{other:?}"
    );
    // One flipped bit anywhere in the private part: refused by the TPM.
    for at in [12, sealed.len() / 3] {
        let mut flipped = sealed.clone();
        flipped[at] ^= 0x01;
        let r = Tpm::open(&path(&a))?.unseal(&flipped);
        assert!(r.is_err(), "bit {at}: {r:?}");
    }
    // Not a sealed object, or one with trailing bytes: refused before the TPM.
    assert_eq!(
        Tpm::open(&path(&a))?.unseal(b"plain").err(),
        Some(TpmError::NotSealed)
    );
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(
        Tpm::open(&path(&a))?.unseal(&longer).err(),
        Some(TpmError::NotSealed)
    );
    // Too large for a TPM data object.
    assert_eq!(
        Tpm::open(&path(&a))?.seal(&[7; 129]).err(),
        Some(TpmError::TooLarge(129))
    );
    Ok(())
}

fn broker_status(f: &BrokerFixture) -> Result<serde_json::Value> {
    let out = f.cli(&["status", "--json"], "")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
    Ok(v["broker"].clone())
}

#[test]
fn the_broker_remembers_this_device_only_with_the_same_tpm() -> Result<()> {
    let mut f = BrokerFixture::start(Options::default())?;
    let (a, b) = (swtpm(&f, "tpm-a")?, swtpm(&f, "tpm-b")?);
    let on = |t: &Swtpm| format!("swtpm:{}", t.sock.display());
    f.set_broker_env("GATEHOUSE_TPM", &on(&a));
    f.start_broker()?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    f.cli_ok(
        &["signin", "--remember", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    let s = broker_status(&f)?;
    assert_eq!(s["remembered_device"], true, "{s}");
    let at = s["remembered_at"].as_str().unwrap_or_default();
    assert!(at.contains("sealed to the software TPM"), "{s}");
    // `audit isolation` shows it.
    let out = f.cli(&["audit", "isolation", "--json"], "")?;
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
    let row = rows
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["check"] == "boundary: remembered material sealed to the TPM")
        .with_context(|| format!("no TPM row: {rows:#}"))?;
    assert_eq!(row["outcome"], "pass", "{row}");
    // Restarted with the same TPM: signed in without the passphrase.
    f.start_broker()?;
    assert_eq!(broker_status(&f)?["signed_in"], true);
    // Another TPM (the material copied to another machine): not signed in.
    f.set_broker_env("GATEHOUSE_TPM", &on(&b));
    f.start_broker()?;
    assert_eq!(broker_status(&f)?["signed_in"], false);
    // No TPM at all: the sealed material is not used either.
    f.set_broker_env("GATEHOUSE_TPM", "off");
    f.start_broker()?;
    assert_eq!(broker_status(&f)?["signed_in"], false);
    // A malformed setting stops the broker with the reason.
    f.set_broker_env("GATEHOUSE_TPM", "tpm0");
    let e = f.start_broker().unwrap_err().to_string();
    assert!(e.contains("broker exited"), "{e}");
    // Back on its own TPM: signed in again.
    f.set_broker_env("GATEHOUSE_TPM", &on(&a));
    f.start_broker()?;
    assert_eq!(broker_status(&f)?["signed_in"], true);
    Ok(())
}
