//! MikroTik RouterOS rule table: generic menu verbs (`print`, `add`, `set`,
//! `remove` …), path-specific rules (`/system reboot`, `/file remove`,
//! `/ip service disable`) and scripting commands (`:foreach`, `:put`). Must
//! never mark a verb read-only that can write (e.g. `export file=`).

use crate::verdict::Class::{self, Dangerous as DA, Moderate as MO, ReadOnly as RO, Unknown as UN};

/// A generic menu verb.
#[derive(Debug, Clone, Copy)]
pub struct Verb {
    /// Stable id.
    pub id: &'static str,
    /// Full verb.
    pub name: &'static str,
    /// Class.
    pub class: Class,
    /// Output carries secrets.
    pub secrets: bool,
    /// Human sentence.
    pub why: &'static str,
}

const fn v(
    id: &'static str,
    name: &'static str,
    class: Class,
    secrets: bool,
    why: &'static str,
) -> Verb {
    Verb {
        id,
        name,
        class,
        secrets,
        why,
    }
}

/// Menu verbs. Abbreviations resolve by unique prefix over this list.
pub static VERBS: &[Verb] = &[
    v(
        "routeros.print",
        "print",
        RO,
        false,
        "print lists items and cannot change state",
    ),
    v(
        "routeros.export",
        "export",
        RO,
        true,
        "export shows the configuration, which contains secrets",
    ),
    v("routeros.get", "get", RO, false, "get reads a value"),
    v(
        "routeros.find",
        "find",
        RO,
        false,
        "find selects items without changing them",
    ),
    v(
        "routeros.monitor",
        "monitor",
        RO,
        false,
        "monitor shows live values",
    ),
    v(
        "routeros.monitor-traffic",
        "monitor-traffic",
        RO,
        false,
        "shows live traffic counters",
    ),
    v(
        "routeros.ping",
        "ping",
        RO,
        false,
        "ping sends a few probe packets",
    ),
    v(
        "routeros.traceroute",
        "traceroute",
        RO,
        false,
        "traceroute sends probe packets",
    ),
    v(
        "routeros.torch",
        "torch",
        RO,
        false,
        "torch shows live traffic",
    ),
    v(
        "routeros.add",
        "add",
        MO,
        false,
        "add creates configuration",
    ),
    v(
        "routeros.set",
        "set",
        MO,
        false,
        "set changes configuration",
    ),
    v(
        "routeros.unset",
        "unset",
        MO,
        false,
        "unset changes configuration",
    ),
    v(
        "routeros.remove",
        "remove",
        MO,
        false,
        "remove deletes configuration",
    ),
    v(
        "routeros.enable",
        "enable",
        MO,
        false,
        "enable turns items on",
    ),
    v(
        "routeros.disable",
        "disable",
        MO,
        false,
        "disable turns items off",
    ),
    v(
        "routeros.comment",
        "comment",
        MO,
        false,
        "comment changes configuration",
    ),
    v(
        "routeros.move",
        "move",
        MO,
        false,
        "move reorders items (rule order matters)",
    ),
    v(
        "routeros.edit",
        "edit",
        MO,
        false,
        "edit changes configuration",
    ),
    v("routeros.reset", "reset", MO, false, "reset changes state"),
    v(
        "routeros.reset-counters",
        "reset-counters",
        MO,
        false,
        "resets counters",
    ),
    v(
        "routeros.reset-counters-all",
        "reset-counters-all",
        MO,
        false,
        "resets counters",
    ),
    v(
        "routeros.make-static",
        "make-static",
        MO,
        false,
        "converts dynamic entries to configuration",
    ),
    v("routeros.flush", "flush", MO, false, "flushes a table"),
    v("routeros.release", "release", MO, false, "releases a lease"),
    v("routeros.renew", "renew", MO, false, "renews a lease"),
    v("routeros.save", "save", MO, false, "writes a file"),
    v(
        "routeros.fetch",
        "fetch",
        MO,
        false,
        "downloads or uploads a file",
    ),
    v(
        "routeros.bandwidth-test",
        "bandwidth-test",
        MO,
        false,
        "bandwidth tests load the links",
    ),
    v(
        "routeros.run",
        "run",
        UN,
        false,
        "runs a stored script whose source is not in the input",
    ),
    v(
        "routeros.import",
        "import",
        UN,
        false,
        "runs commands from a file that is not in the input",
    ),
    v("routeros.reboot", "reboot", DA, false, "reboots the router"),
    v(
        "routeros.shutdown",
        "shutdown",
        DA,
        false,
        "shuts the router down",
    ),
    v(
        "routeros.reset-configuration",
        "reset-configuration",
        DA,
        false,
        "wipes the configuration",
    ),
    v(
        "routeros.upgrade",
        "upgrade",
        DA,
        false,
        "upgrades firmware",
    ),
    v(
        "routeros.install",
        "install",
        DA,
        false,
        "installs packages and reboots",
    ),
    v(
        "routeros.downgrade",
        "downgrade",
        DA,
        false,
        "downgrades packages and reboots",
    ),
    v(
        "routeros.load",
        "load",
        DA,
        false,
        "loads a backup, replacing the configuration",
    ),
    v(
        "routeros.check-for-updates",
        "check-for-updates",
        MO,
        false,
        "contacts the update server",
    ),
    v(
        "routeros.download",
        "download",
        MO,
        false,
        "downloads packages",
    ),
    v("routeros.cancel", "cancel", MO, false, "cancels a job"),
    v("routeros.quit", "quit", RO, false, "ends the session"),
];

/// A path-specific rule: matches menu path + verb (keywords may be given
/// abbreviated in the input), optionally only when an argument is present.
#[derive(Debug, Clone, Copy)]
pub struct PathRule {
    /// Stable id.
    pub id: &'static str,
    /// Menu path and verb, space separated, without slashes.
    pub path: &'static str,
    /// Only when an argument starting with this text is present.
    pub arg: Option<&'static str>,
    /// Class.
    pub class: Class,
    /// Human sentence.
    pub why: &'static str,
}

const fn pr(
    id: &'static str,
    path: &'static str,
    arg: Option<&'static str>,
    class: Class,
    why: &'static str,
) -> PathRule {
    PathRule {
        id,
        path,
        arg,
        class,
        why,
    }
}

/// Path rules (checked before the generic verb; the most dangerous match wins).
pub static PATHS: &[PathRule] = &[
    pr(
        "routeros.file.remove",
        "file remove",
        None,
        DA,
        "deletes files (backups, packages)",
    ),
    pr(
        "routeros.system.script.run",
        "system script run",
        None,
        UN,
        "runs a stored script whose source is not in the input",
    ),
    pr(
        "routeros.system.backup.load",
        "system backup load",
        None,
        DA,
        "loads a backup, replacing the configuration",
    ),
    pr(
        "routeros.system.reset-configuration",
        "system reset-configuration",
        None,
        DA,
        "wipes the configuration",
    ),
    pr(
        "routeros.system.reboot",
        "system reboot",
        None,
        DA,
        "reboots the router",
    ),
    pr(
        "routeros.system.shutdown",
        "system shutdown",
        None,
        DA,
        "shuts the router down",
    ),
    pr(
        "routeros.system.routerboard.upgrade",
        "system routerboard upgrade",
        None,
        DA,
        "upgrades the boot loader",
    ),
    pr(
        "routeros.system.package.update.install",
        "system package update install",
        None,
        DA,
        "installs updates and reboots",
    ),
    pr(
        "routeros.user.remove",
        "user remove",
        None,
        DA,
        "removes user accounts (possible lock-out)",
    ),
    pr(
        "routeros.user.disable",
        "user disable",
        None,
        DA,
        "disables user accounts (possible lock-out)",
    ),
    pr(
        "routeros.ip.service.disable",
        "ip service disable",
        None,
        DA,
        "disables a management service (ssh, winbox, api): lock-out",
    ),
    pr(
        "routeros.ip.service.set-disabled",
        "ip service set",
        Some("disabled=yes"),
        DA,
        "disables a management service: lock-out",
    ),
    pr(
        "routeros.ip.service.set-address",
        "ip service set",
        Some("address="),
        DA,
        "restricts where management is allowed from: possible lock-out",
    ),
    pr(
        "routeros.ip.service.set-port",
        "ip service set",
        Some("port="),
        DA,
        "moves a management service to another port: possible lock-out",
    ),
    pr(
        "routeros.mac-server.none",
        "tool mac-server set",
        Some("allowed-interface-list=none"),
        DA,
        "disables MAC access (recovery path)",
    ),
    pr(
        "routeros.mac-winbox.none",
        "tool mac-server mac-winbox set",
        Some("allowed-interface-list=none"),
        DA,
        "disables MAC winbox (recovery path)",
    ),
    pr(
        "routeros.export.file",
        "export",
        Some("file="),
        MO,
        "export to a file writes flash",
    ),
    pr(
        "routeros.interface.disable",
        "interface disable",
        None,
        MO,
        "disables an interface",
    ),
];

/// Scripting commands (`:put`, `:foreach` …). Bodies (`do={…}`) are
/// classified separately by the engine.
pub static SCRIPT: &[Verb] = &[
    v("routeros.script.put", ":put", RO, false, "prints a value"),
    v(
        "routeros.script.local",
        ":local",
        RO,
        false,
        "sets a local script variable",
    ),
    v(
        "routeros.script.set",
        ":set",
        RO,
        false,
        "sets a script variable",
    ),
    v("routeros.script.delay", ":delay", RO, false, "waits"),
    v(
        "routeros.script.len",
        ":len",
        RO,
        false,
        "computes a length",
    ),
    v(
        "routeros.script.pick",
        ":pick",
        RO,
        false,
        "picks a substring",
    ),
    v(
        "routeros.script.typeof",
        ":typeof",
        RO,
        false,
        "reads a type",
    ),
    v(
        "routeros.script.tostr",
        ":tostr",
        RO,
        false,
        "converts a value",
    ),
    v(
        "routeros.script.resolve",
        ":resolve",
        RO,
        false,
        "resolves a DNS name",
    ),
    v(
        "routeros.script.return",
        ":return",
        RO,
        false,
        "returns from a function",
    ),
    v(
        "routeros.script.error",
        ":error",
        RO,
        false,
        "raises an error",
    ),
    v(
        "routeros.script.foreach",
        ":foreach",
        RO,
        false,
        "loops over items; its body is classified",
    ),
    v(
        "routeros.script.for",
        ":for",
        RO,
        false,
        "loops; its body is classified",
    ),
    v(
        "routeros.script.while",
        ":while",
        RO,
        false,
        "loops; its body is classified",
    ),
    v(
        "routeros.script.do",
        ":do",
        RO,
        false,
        "runs a block; its body is classified",
    ),
    v(
        "routeros.script.if",
        ":if",
        RO,
        false,
        "conditional; its branches are classified",
    ),
    v(
        "routeros.script.time",
        ":time",
        RO,
        false,
        "times a block; its body is classified",
    ),
    v(
        "routeros.script.global",
        ":global",
        MO,
        false,
        "sets a global variable that persists until reboot",
    ),
    v(
        "routeros.script.log",
        ":log",
        MO,
        false,
        "writes to the system log",
    ),
    v(
        "routeros.script.execute",
        ":execute",
        UN,
        false,
        "runs a script in the background",
    ),
    v(
        "routeros.script.parse",
        ":parse",
        UN,
        false,
        "builds a function from text",
    ),
    v(
        "routeros.script.environment",
        ":environment",
        RO,
        false,
        "shows script variables",
    ),
    v("routeros.script.beep", ":beep", RO, false, "beeps"),
];
