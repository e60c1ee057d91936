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

/// The sign-out options, read before signing out (see
/// [`settings::sign_out_clears`]).
pub fn sign_out_clears(profile: Option<&str>) -> SignOutClears {
    match Layout::resolve(profile) {
        Ok(layout) => settings::sign_out_clears(&layout),
        Err(_) => SignOutClears::default(),
    }
}

/// Clears what `clears` asks for after the broker signed out (see
/// [`settings::clear_after_sign_out`]).
pub fn clear_after_sign_out(profile: Option<&str>, clears: &SignOutClears) -> Vec<String> {
    match Layout::resolve(profile) {
        Ok(layout) => settings::clear_after_sign_out(
            &layout,
            &gatehouse_recordings::recordings_dir(&layout),
            clears,
        ),
        Err(e) if clears.local_records || clears.recordings => {
            vec![format!("local records and recordings: NOT cleared: {e}")]
        }
        Err(_) => Vec::new(),
    }
}
