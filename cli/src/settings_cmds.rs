//! `gatehouse settings get|set|list`: a person's settings record (private,
//! MACed by the broker like every record).
//!
//! Owns: turning arguments into settings changes and printing them with what
//! each one does. Must never: write when a key or value is bad, or accept an
//! organization that does not exist for a per-organization key.

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use gatehouse_ipc::Layout;
use gatehouse_ipc::broker::KeyScope;
use gatehouse_records::settings::{self, Key, Settings, SignOutClears};

use crate::records_cmds::{Ctx, actor};

#[derive(Subcommand, Debug)]
pub enum SettingsCmd {
    /// Every setting: its value and what it does.
    List {
        /// Organization whose tier models to show (default: every org that has one).
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print one setting's value.
    Get {
        /// e.g. theme, font-size, ai.default-tier, ai.model.fast, copilot.trust, sign-out.recordings
        key: String,
        /// Organization (name or id) of a per-organization key (ai.model.*).
        #[arg(long)]
        org: Option<String>,
    },
    /// Change one setting.
    Set {
        key: String,
        value: String,
        /// Organization (name or id) of a per-organization key (ai.model.*).
        #[arg(long)]
        org: Option<String>,
    },
}

/// `--org NAME` → the organization id (asking the broker when the local name
/// cache does not know it).
fn org_id(ctx: &mut Ctx, org: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(o) = org else { return Ok(None) };
    match ctx.org_scope(o, true)? {
        KeyScope::Org(id) => Ok(Some(id)),
        KeyScope::Private => bail!("invalid org: {o:?} is not an organization"),
    }
}

fn org_name(ctx: &Ctx, id: &str) -> String {
    ctx.store
        .org_names()
        .ok()
        .and_then(|o| o.into_iter().find(|(i, _)| i == id).map(|(_, n)| n))
        .unwrap_or_else(|| id.to_string())
}

pub fn run(profile: Option<&str>, cmd: SettingsCmd) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    match cmd {
        SettingsCmd::Get { key, org } => {
            let key = Key::parse(&key)?;
            if !key.per_org() && org.is_some() {
                bail!("invalid {key}: is not per organization (drop --org)");
            }
            let org = org_id(&mut ctx, org.as_deref())?;
            let (store, sealer) = ctx.parts()?;
            let (s, _) = settings::load(store, sealer)?;
            println!("{}", s.get(key, org.as_deref())?);
        }
        SettingsCmd::Set { key, value, org } => {
            let key = Key::parse(&key)?;
            let org = org_id(&mut ctx, org.as_deref())?;
            let (store, sealer) = ctx.parts()?;
            let (mut s, meta) = settings::load(store, sealer)?;
            s.set(key, org.as_deref(), &value)?;
            settings::save(store, sealer, &actor(), meta.as_ref(), s.clone())?;
            println!("{key} = {}", s.get(key, org.as_deref())?);
        }
        SettingsCmd::List { org, json } => {
            let org = org_id(&mut ctx, org.as_deref())?;
            let (store, sealer) = ctx.parts()?;
            let (s, _) = settings::load(store, sealer)?;
            print_list(&ctx, &s, org.as_deref(), json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(ctx: &Ctx, s: &Settings, org: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut orgs: Vec<String> = match org {
        Some(o) => vec![o.to_string()],
        None => s.tier_models.iter().map(|m| m.org.clone()).collect(),
    };
    orgs.dedup();
    let mut rows = Vec::new();
    for key in Key::ALL {
        if key.per_org() {
            for o in &orgs {
                rows.push((key, Some(o.clone()), s.get(key, Some(o))?));
            }
        } else {
            rows.push((key, None, s.get(key, None)?));
        }
    }
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(k, o, v)| {
                serde_json::json!({
                    "key": k.as_str(),
                    "org": o.as_deref().map(|id| org_name(ctx, id)),
                    "value": v,
                    "explain": k.explain(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (k, o, v) in rows {
        let name = match o {
            Some(id) => format!("{k} (org {})", org_name(ctx, &id)),
            None => k.to_string(),
        };
        println!("{name:<36} {v}");
        println!("    {}", k.explain());
    }
    Ok(())
}

/// The sign-out options, read before signing out: verified when the broker
/// can check the record's MAC, else the stored record's plaintext (a
/// tampered record could then clear less; a same-uid program can read these
/// files anyway, so the plaintext is used rather than clearing nothing).
pub fn sign_out_clears(profile: Option<&str>) -> SignOutClears {
    let Ok(mut ctx) = Ctx::open(profile) else {
        return SignOutClears::default();
    };
    let verified = ctx
        .parts()
        .ok()
        .and_then(|(store, sealer)| settings::load(store, sealer).ok());
    match verified {
        Some((s, _)) => s.sign_out_clears,
        None => settings::unverified(&ctx.store)
            .map(|s| s.sign_out_clears)
            .unwrap_or_default(),
    }
}

/// Clears what `clears` asks for after the broker signed out; one line per
/// thing cleared or not cleared (and why).
pub fn clear_after_sign_out(profile: Option<&str>, clears: &SignOutClears) -> Vec<String> {
    let mut done = Vec::new();
    if clears.local_records {
        match Ctx::open(profile).and_then(|mut c| Ok(c.store.clear_local()?)) {
            Ok(n) => done.push(format!(
                "local records: deleted {n} record(s) from this profile's store (sign-out.local-records)"
            )),
            Err(e) => done.push(format!("local records: NOT cleared: {e:#}")),
        }
    }
    if clears.recordings {
        match Layout::resolve(profile) {
            Ok(layout) => {
                let dir = gatehouse_recordings::recordings_dir(&layout);
                match remove_dir_contents(&dir) {
                    Ok(n) => done.push(format!(
                        "recordings: deleted {n} file(s) under {} (sign-out.recordings)",
                        dir.display()
                    )),
                    Err(e) => {
                        done.push(format!("recordings: NOT cleared ({}): {e}", dir.display()))
                    }
                }
            }
            Err(e) => done.push(format!("recordings: NOT cleared: {e}")),
        }
    }
    done
}

/// Deletes every file under `dir` (keeping `dir`); a missing `dir` is empty.
fn remove_dir_contents(dir: &std::path::Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            n += remove_dir_contents(&path)?;
            std::fs::remove_dir(&path)?;
        } else {
            std::fs::remove_file(&path)?;
            n += 1;
        }
    }
    Ok(n)
}
