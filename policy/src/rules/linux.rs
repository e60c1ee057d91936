//! Linux shell rule table: command name → class and how its arguments are
//! interpreted ([`Handler`]). Owns the meaning of commands; the shell parser
//! in `classify::linux` owns splitting, quoting, substitutions and
//! redirections. Must never list as read-only a command that has writing
//! options without a handler that checks them.

use crate::verdict::Class::{self, Dangerous as DA, Moderate as MO, ReadOnly as RO, Unknown as UN};

/// How a command's arguments are examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Class as listed, whatever the arguments.
    Plain,
    /// Runs its arguments as a command after options (`sudo`, `nice`, `env`, `timeout`, `watch`).
    Wrapper,
    /// `xargs CMD`: runs CMD with extra arguments.
    Xargs,
    /// `sh -c '…'`, `bash -c '…'`.
    ShellC,
    /// `eval …`.
    Eval,
    /// `find … -delete / -exec …`.
    Find,
    /// `ssh host '…'`.
    Ssh,
    /// `vtysh -c '…'` (FRR, IOS-like).
    Vtysh,
    /// Subcommand table in [`SUBS`]; unlisted subcommands take the listed class.
    Sub,
    /// `sed -i` writes; otherwise read-only.
    Sed,
    /// `rm`: recursive/forced removal is dangerous.
    Rm,
    /// `ping`: flood / huge sizes are not read-only.
    Ping,
    /// `tcpdump -w` writes a file.
    Tcpdump,
    /// `tee` writes files unless only /dev/null.
    Tee,
    /// Read-only with no arguments, moderate with arguments (`hostname`, `date`).
    NoArgsOnly,
    /// `dmesg -c/-C` clears the buffer.
    Dmesg,
}

/// A Linux command rule.
#[derive(Debug, Clone, Copy)]
pub struct Cmd {
    /// Stable id.
    pub id: &'static str,
    /// Command name (basename).
    pub name: &'static str,
    /// Class (for Plain; default for others).
    pub class: Class,
    /// Argument handling.
    pub handler: Handler,
    /// Human sentence.
    pub why: &'static str,
}

const fn c(id: &'static str, name: &'static str, class: Class, handler: Handler, why: &'static str) -> Cmd {
    Cmd { id, name, class, handler, why }
}
use Handler as H;

/// Commands.
pub static CMDS: &[Cmd] = &[
    c("linux.ls", "ls", RO, H::Plain, "lists files"),
    c("linux.cat", "cat", RO, H::Plain, "prints files"),
    c("linux.head", "head", RO, H::Plain, "prints the start of files"),
    c("linux.tail", "tail", RO, H::Plain, "prints the end of files"),
    c("linux.less", "less", RO, H::Plain, "pages files"),
    c("linux.more", "more", RO, H::Plain, "pages files"),
    c("linux.grep", "grep", RO, H::Plain, "searches text"),
    c("linux.egrep", "egrep", RO, H::Plain, "searches text"),
    c("linux.zgrep", "zgrep", RO, H::Plain, "searches text"),
    c("linux.wc", "wc", RO, H::Plain, "counts text"),
    c("linux.sort", "sort", RO, H::Plain, "sorts text"),
    c("linux.uniq", "uniq", RO, H::Plain, "filters text"),
    c("linux.cut", "cut", RO, H::Plain, "cuts columns"),
    c("linux.tr", "tr", RO, H::Plain, "translates characters"),
    c("linux.jq", "jq", RO, H::Plain, "filters JSON"),
    c("linux.column", "column", RO, H::Plain, "formats columns"),
    c("linux.echo", "echo", RO, H::Plain, "prints text"),
    c("linux.printf", "printf", RO, H::Plain, "prints text"),
    c("linux.true", "true", RO, H::Plain, "does nothing"),
    c("linux.false", "false", RO, H::Plain, "does nothing"),
    c("linux.test", "test", RO, H::Plain, "tests a condition"),
    c("linux.pwd", "pwd", RO, H::Plain, "prints the working directory"),
    c("linux.cd", "cd", RO, H::Plain, "changes the shell's directory"),
    c("linux.whoami", "whoami", RO, H::Plain, "prints the user"),
    c("linux.id", "id", RO, H::Plain, "prints user ids"),
    c("linux.uname", "uname", RO, H::Plain, "prints system information"),
    c("linux.uptime", "uptime", RO, H::Plain, "prints uptime"),
    c("linux.free", "free", RO, H::Plain, "prints memory use"),
    c("linux.df", "df", RO, H::Plain, "prints disk use"),
    c("linux.du", "du", RO, H::Plain, "prints disk use"),
    c("linux.ps", "ps", RO, H::Plain, "lists processes"),
    c("linux.top", "top", RO, H::Plain, "shows processes"),
    c("linux.htop", "htop", RO, H::Plain, "shows processes"),
    c("linux.ss", "ss", RO, H::Plain, "lists sockets"),
    c("linux.netstat", "netstat", RO, H::Plain, "lists sockets"),
    c("linux.lsblk", "lsblk", RO, H::Plain, "lists block devices"),
    c("linux.lscpu", "lscpu", RO, H::Plain, "shows CPU information"),
    c("linux.lspci", "lspci", RO, H::Plain, "lists PCI devices"),
    c("linux.lsusb", "lsusb", RO, H::Plain, "lists USB devices"),
    c("linux.lsof", "lsof", RO, H::Plain, "lists open files"),
    c("linux.stat", "stat", RO, H::Plain, "shows file status"),
    c("linux.file", "file", RO, H::Plain, "identifies files"),
    c("linux.which", "which", RO, H::Plain, "locates a command"),
    c("linux.whereis", "whereis", RO, H::Plain, "locates a command"),
    c("linux.journalctl", "journalctl", RO, H::Plain, "reads the journal"),
    c("linux.last", "last", RO, H::Plain, "shows logins"),
    c("linux.w", "w", RO, H::Plain, "shows logged-in users"),
    c("linux.who", "who", RO, H::Plain, "shows logged-in users"),
    c("linux.env-print", "printenv", RO, H::Plain, "prints the environment"),
    c("linux.traceroute", "traceroute", RO, H::Plain, "sends probe packets"),
    c("linux.tracepath", "tracepath", RO, H::Plain, "sends probe packets"),
    c("linux.mtr", "mtr", RO, H::Plain, "sends probe packets"),
    c("linux.dig", "dig", RO, H::Plain, "queries DNS"),
    c("linux.host", "host", RO, H::Plain, "queries DNS"),
    c("linux.nslookup", "nslookup", RO, H::Plain, "queries DNS"),
    c("linux.ethtool", "ethtool", RO, H::Plain, "shows NIC settings"),
    c("linux.md5sum", "md5sum", RO, H::Plain, "computes checksums"),
    c("linux.sha256sum", "sha256sum", RO, H::Plain, "computes checksums"),
    c("linux.diff", "diff", RO, H::Plain, "compares files"),
    c("linux.sleep", "sleep", RO, H::Plain, "waits"),
    c("linux.ping", "ping", RO, H::Ping, "sends a few probe packets"),
    c("linux.ping6", "ping6", RO, H::Ping, "sends a few probe packets"),
    c("linux.tcpdump", "tcpdump", RO, H::Tcpdump, "captures packets to the screen"),
    c("linux.dmesg", "dmesg", RO, H::Dmesg, "reads the kernel log"),
    c("linux.hostname", "hostname", RO, H::NoArgsOnly, "prints the host name; with an argument it sets it"),
    c("linux.date", "date", RO, H::NoArgsOnly, "prints the date; with arguments it may set it"),
    c("linux.sed", "sed", RO, H::Sed, "edits text on the output; -i edits files"),
    c("linux.tee", "tee", MO, H::Tee, "writes its input to files"),
    c("linux.awk", "awk", UN, H::Plain, "awk programs can run commands and write files"),
    c("linux.perl", "perl", UN, H::Plain, "runs a program"),
    c("linux.python3", "python3", UN, H::Plain, "runs a program"),
    c("linux.python", "python", UN, H::Plain, "runs a program"),
    c("linux.curl", "curl", UN, H::Plain, "makes an HTTP request whose effect is not known"),
    c("linux.wget", "wget", MO, H::Plain, "downloads files"),
    c("linux.sudo", "sudo", RO, H::Wrapper, "runs a command as another user"),
    c("linux.doas", "doas", RO, H::Wrapper, "runs a command as another user"),
    c("linux.env", "env", RO, H::Wrapper, "runs a command with a changed environment"),
    c("linux.nice", "nice", RO, H::Wrapper, "runs a command at another priority"),
    c("linux.nohup", "nohup", RO, H::Wrapper, "runs a command detached"),
    c("linux.timeout", "timeout", RO, H::Wrapper, "runs a command with a time limit"),
    c("linux.time", "time", RO, H::Wrapper, "times a command"),
    c("linux.watch", "watch", RO, H::Wrapper, "repeats a command"),
    c("linux.command", "command", RO, H::Wrapper, "runs a command"),
    c("linux.exec", "exec", RO, H::Wrapper, "replaces the shell with a command"),
    c("linux.xargs", "xargs", RO, H::Xargs, "runs a command with arguments from input"),
    c("linux.sh", "sh", UN, H::ShellC, "runs a shell"),
    c("linux.bash", "bash", UN, H::ShellC, "runs a shell"),
    c("linux.dash", "dash", UN, H::ShellC, "runs a shell"),
    c("linux.zsh", "zsh", UN, H::ShellC, "runs a shell"),
    c("linux.eval", "eval", UN, H::Eval, "evaluates its arguments as a command"),
    c("linux.find", "find", RO, H::Find, "searches for files"),
    c("linux.ssh", "ssh", UN, H::Ssh, "runs a command on another host"),
    c("linux.vtysh", "vtysh", UN, H::Vtysh, "runs routing-daemon CLI commands"),
    c("linux.rm", "rm", MO, H::Rm, "removes files"),
    c("linux.rmdir", "rmdir", MO, H::Plain, "removes directories"),
    c("linux.cp", "cp", MO, H::Plain, "copies files"),
    c("linux.mv", "mv", MO, H::Plain, "moves files"),
    c("linux.mkdir", "mkdir", MO, H::Plain, "creates directories"),
    c("linux.touch", "touch", MO, H::Plain, "creates or touches files"),
    c("linux.chmod", "chmod", MO, H::Plain, "changes permissions"),
    c("linux.chown", "chown", MO, H::Plain, "changes ownership"),
    c("linux.ln", "ln", MO, H::Plain, "creates links"),
    c("linux.kill", "kill", MO, H::Plain, "signals processes"),
    c("linux.pkill", "pkill", MO, H::Plain, "signals processes"),
    c("linux.killall", "killall", MO, H::Plain, "signals processes"),
    c("linux.scp", "scp", MO, H::Plain, "copies files over SSH"),
    c("linux.rsync", "rsync", MO, H::Plain, "synchronises files"),
    c("linux.apt", "apt", MO, H::Plain, "manages packages"),
    c("linux.apt-get", "apt-get", MO, H::Plain, "manages packages"),
    c("linux.yum", "yum", MO, H::Plain, "manages packages"),
    c("linux.dnf", "dnf", MO, H::Plain, "manages packages"),
    c("linux.useradd", "useradd", MO, H::Plain, "adds users"),
    c("linux.usermod", "usermod", MO, H::Plain, "changes users"),
    c("linux.passwd", "passwd", MO, H::Plain, "changes passwords"),
    c("linux.crontab", "crontab", MO, H::Plain, "changes scheduled jobs"),
    c("linux.sysctl", "sysctl", MO, H::Plain, "reads or changes kernel settings"),
    c("linux.tc", "tc", MO, H::Plain, "changes traffic control"),
    c("linux.nmcli", "nmcli", MO, H::Plain, "changes network settings"),
    c("linux.reboot", "reboot", DA, H::Plain, "reboots the host"),
    c("linux.shutdown", "shutdown", DA, H::Plain, "shuts the host down"),
    c("linux.poweroff", "poweroff", DA, H::Plain, "powers the host off"),
    c("linux.halt", "halt", DA, H::Plain, "halts the host"),
    c("linux.init", "init", DA, H::Plain, "changes the run level"),
    c("linux.mkfs", "mkfs", DA, H::Plain, "formats a file system"),
    c("linux.mkfs.ext4", "mkfs.ext4", DA, H::Plain, "formats a file system"),
    c("linux.fdisk", "fdisk", DA, H::Plain, "repartitions a disk"),
    c("linux.parted", "parted", DA, H::Plain, "repartitions a disk"),
    c("linux.wipefs", "wipefs", DA, H::Plain, "wipes file system signatures"),
    c("linux.shred", "shred", DA, H::Plain, "destroys file contents"),
    c("linux.dd", "dd", DA, H::Plain, "writes raw devices or files"),
    c("linux.userdel", "userdel", DA, H::Plain, "deletes users"),
    c("linux.ip", "ip", RO, H::Sub, "shows or changes network configuration"),
    c("linux.systemctl", "systemctl", MO, H::Sub, "controls services"),
    c("linux.service", "service", MO, H::Plain, "controls services"),
    c("linux.iptables", "iptables", MO, H::Sub, "changes the firewall"),
    c("linux.ip6tables", "ip6tables", MO, H::Sub, "changes the firewall"),
    c("linux.nft", "nft", MO, H::Sub, "changes the firewall"),
    c("linux.ufw", "ufw", MO, H::Sub, "changes the firewall"),
    c("linux.git", "git", MO, H::Sub, "version control"),
    c("linux.docker", "docker", MO, H::Sub, "manages containers"),
    c("linux.kubectl", "kubectl", MO, H::Sub, "manages a cluster"),
];

/// A subcommand rule for [`Handler::Sub`] commands: the first non-option
/// argument (resolved by unique prefix for `ip`) or an option like `-L`.
#[derive(Debug, Clone, Copy)]
pub struct Sub {
    /// Stable id.
    pub id: &'static str,
    /// Parent command.
    pub cmd: &'static str,
    /// Subcommand words (space separated, may be an option such as `-F`).
    pub sub: &'static str,
    /// Class.
    pub class: Class,
    /// Human sentence.
    pub why: &'static str,
}

const fn s(id: &'static str, cmd: &'static str, sub: &'static str, class: Class, why: &'static str) -> Sub {
    Sub { id, cmd, sub, class, why }
}

/// Subcommands. For `ip`, an object with no verb (`ip addr`) is a show.
pub static SUBS: &[Sub] = &[
    s("linux.ip.show", "ip", "show", RO, "shows network state"),
    s("linux.ip.list", "ip", "list", RO, "shows network state"),
    s("linux.ip.get", "ip", "get", RO, "shows network state"),
    s("linux.ip.add", "ip", "add", MO, "changes network configuration"),
    s("linux.ip.del", "ip", "delete", MO, "changes network configuration"),
    s("linux.ip.set", "ip", "set", MO, "changes network configuration"),
    s("linux.ip.change", "ip", "change", MO, "changes network configuration"),
    s("linux.ip.replace", "ip", "replace", MO, "changes network configuration"),
    s("linux.ip.flush", "ip", "flush", DA, "flushes addresses or routes (can cut the connection)"),
    s("linux.ip.append", "ip", "append", MO, "changes network configuration"),
    s("linux.ip.monitor", "ip", "monitor", RO, "watches network events"),
    s("linux.systemctl.status", "systemctl", "status", RO, "shows service status"),
    s("linux.systemctl.is-active", "systemctl", "is-active", RO, "shows service status"),
    s("linux.systemctl.is-enabled", "systemctl", "is-enabled", RO, "shows service status"),
    s("linux.systemctl.list-units", "systemctl", "list-units", RO, "lists services"),
    s("linux.systemctl.list-timers", "systemctl", "list-timers", RO, "lists timers"),
    s("linux.systemctl.show", "systemctl", "show", RO, "shows service properties"),
    s("linux.systemctl.cat", "systemctl", "cat", RO, "prints unit files"),
    s("linux.systemctl.reboot", "systemctl", "reboot", DA, "reboots the host"),
    s("linux.systemctl.poweroff", "systemctl", "poweroff", DA, "powers the host off"),
    s("linux.systemctl.halt", "systemctl", "halt", DA, "halts the host"),
    s("linux.systemctl.stop", "systemctl", "stop", MO, "stops a service"),
    s("linux.systemctl.restart", "systemctl", "restart", MO, "restarts a service"),
    s("linux.iptables.list", "iptables", "-L", RO, "lists firewall rules"),
    s("linux.iptables.list-S", "iptables", "-S", RO, "lists firewall rules"),
    s("linux.iptables.flush", "iptables", "-F", DA, "flushes all firewall rules"),
    s("linux.iptables.policy", "iptables", "-P", DA, "changes a chain's default policy (possible lock-out)"),
    s("linux.iptables.delete-chain", "iptables", "-X", MO, "deletes chains"),
    s("linux.ip6tables.list", "ip6tables", "-L", RO, "lists firewall rules"),
    s("linux.ip6tables.flush", "ip6tables", "-F", DA, "flushes all firewall rules"),
    s("linux.nft.list", "nft", "list", RO, "lists firewall rules"),
    s("linux.nft.flush", "nft", "flush", DA, "flushes firewall rules"),
    s("linux.ufw.status", "ufw", "status", RO, "shows firewall status"),
    s("linux.ufw.disable", "ufw", "disable", DA, "disables the firewall"),
    s("linux.git.status", "git", "status", RO, "shows repository status"),
    s("linux.git.log", "git", "log", RO, "shows history"),
    s("linux.git.diff", "git", "diff", RO, "shows changes"),
    s("linux.git.show", "git", "show", RO, "shows objects"),
    s("linux.docker.ps", "docker", "ps", RO, "lists containers"),
    s("linux.docker.logs", "docker", "logs", RO, "shows container logs"),
    s("linux.docker.inspect", "docker", "inspect", RO, "shows container details"),
    s("linux.docker.rm", "docker", "rm", MO, "removes containers"),
    s("linux.kubectl.get", "kubectl", "get", RO, "lists resources"),
    s("linux.kubectl.describe", "kubectl", "describe", RO, "describes resources"),
    s("linux.kubectl.logs", "kubectl", "logs", RO, "shows pod logs"),
    s("linux.kubectl.delete", "kubectl", "delete", DA, "deletes resources"),
];

/// `ip` object words (resolved by unique prefix as `ip` does).
pub static IP_OBJECTS: &[&str] = &[
    "address", "addrlabel", "link", "maddress", "monitor", "mroute", "neighbour", "netconf", "netns",
    "ntable", "route", "rule", "tunnel", "tuntap", "vrf", "xfrm", "l2tp", "fou", "macsec", "mptcp",
    "nexthop", "sr", "tcp_metrics", "token",
];

/// Unknown-command class. A command not in [`CMDS`] is unknown.
pub const UNLISTED: Class = UN;
