#!/usr/bin/env python3
"""Generates classify_families.tsv: classification cases generated per
family of issue 16 from the hand-labelled classify.tsv (its labels are the
ground truth) and each family's rule:

  separators  R <sep> X: honoured separators give max(R, X); a separator the
              vendor does not honour gives max(unknown, X).
  control     R <ctrl> X (Ctrl-U, CR, DEL, BS, Ctrl-C): max(unknown, X).
  paths       Linux programs by a non-system path: unknown; by /bin, /usr/bin…:
              the program's own class.
  wrappers    env/command/exec/busybox/sudo -u/nice/timeout/… X: X's class;
              sh -c, eval, find -exec, xargs the same.
  routeros    :do {X}, :if … do={X}, :put [X], :local v [X], where-clause
              substitutions, :execute "X", loops over removals.
  shells      EOS bash and run bash, NX-OS run bash, Junos start shell command.
  unknown     words no rule knows, on every vendor: unknown.

Deterministic (seeded); rerun after editing classify.tsv:
    cd policy/corpus && python3 gen_classify.py
"""
import random

r = random.Random(16)
ORDER = ["read-only", "moderate", "unknown", "dangerous"]


def mx(*cs):
    return max(cs, key=ORDER.index)


hand = {}
for line in open("classify.tsv"):
    if not line.strip() or line.startswith("#"):
        continue
    v, c, cmd = line.rstrip("\n").split("\t", 2)
    hand.setdefault(v, []).append((c, cmd))


def pool(v, cls, ok=lambda s: True):
    out = []
    for c, cmd in hand.get(v, []):
        if c != cls or "\\n" in cmd or "#" in cmd or ";" in cmd or "`" in cmd:
            continue
        if "$(" in cmd or "&&" in cmd or "||" in cmd or "'" in cmd or '"' in cmd:
            continue
        if ok(cmd):
            out.append(cmd)
    return out


cases = []


def add(v, c, cmd, fam):
    cases.append((v, c, cmd, fam))


def esc(s):
    return (s.replace("\n", "\\n").replace("\r", "\\r").replace("\x15", "\\x15")
            .replace("\x7f", "\\x7f").replace("\x08", "\\x08").replace("\x03", "\\x03"))


HONOURED = {
    "linux": [";", "&&", "||", "|", "&", "\n"],
    "routeros": [";", "\n"],
    "nxos": [";", "\n"],
    "eos": [";", "\n"],
    "ios": ["\n"],
    "iosxe": ["\n"],
    "junos": ["\n"],
}
FOREIGN = [";", "&&", "||", "`", "$("]
CTRL = ["\x15", "\r", "\x03", "\x7f\x7f\x7f", "\x08"]

for v in ["linux", "routeros", "nxos", "eos", "ios", "iosxe", "junos"]:
    src = "ios" if v == "iosxe" else v
    abs_only = (lambda s: s.startswith(("/", ":"))) if v == "routeros" else (lambda s: True)
    R = pool(src, "read-only", abs_only)
    X = [(c, x) for c in ORDER[1:] + ["read-only"] for x in pool(src, c, abs_only)]
    if v == "linux":
        # `R | X` pipes into X and `R & X` backgrounds R: same rule
        R = [x for x in R if not x.endswith("&")]
    n = 0
    for _ in range(400):
        if n >= 70:
            break
        rr = r.choice(R)
        xc, xx = r.choice(X)
        kind = r.random()
        if kind < 0.45:
            sep = r.choice(HONOURED[v])
            joined = rr + (sep if sep == "\n" else " " + sep + " ") + xx
            want = mx("read-only" if xc != "unknown" else xc, xc)
            if v in ("ios", "iosxe", "junos") and " | " in rr and sep != "\n":
                continue
        elif kind < 0.75:
            if v == "linux":
                w = r.choice(["$(", "`"])
                # a substitution as R's own argument changes R; echo it
                joined = rr + " && echo " + (w + xx + (")" if w == "$(" else "`"))
                want = mx("read-only", xc)
            elif v == "routeros":
                joined = rr + " [" + xx + "]"
                want = mx("read-only", xc)
            else:
                sep = r.choice([s for s in FOREIGN if s not in HONOURED[v]])
                if sep == "$(":
                    joined = rr + " $(" + xx + ")"
                elif sep == "`":
                    joined = rr + " `" + xx + "`"
                else:
                    joined = rr + " " + sep + " " + xx
                want = mx("unknown", xc)
        else:
            joined = rr + r.choice(CTRL) + xx
            want = mx("unknown", xc)
        add(v, want, joined, "separators" if kind < 0.75 else "control")
        n += 1

# unknown words, every vendor
LET = "abcdefghijklmnopqrstuvwxyz"
for v in ["linux", "routeros", "nxos", "eos", "ios", "iosxe", "junos"]:
    for _ in range(12):
        w = "zq" + "".join(r.choice(LET) for _ in range(r.randint(2, 8)))
        form = r.choice(["{w}", "{w} detail", "{w} 1 2"] + (["/{w}", "/ip {w}", "/{w} print2"] if v == "routeros" else []))
        add(v, "unknown", form.format(w=w), "unknown")

# Linux paths and wrappers
LR = [x for x in pool("linux", "read-only") if "|" not in x and not x.startswith(("sudo", "env", "nice", "timeout", "/"))]
LD = [x for x in pool("linux", "dangerous") if "|" not in x and not x.startswith("/")]
LM = [x for x in pool("linux", "moderate") if "|" not in x and not x.startswith("/")]
BAD_DIRS = ["./", "/tmp/", "~/bin/", "/home/ops/", "../", "/usr/local/bin/", "/opt/tools/bin/", "bin/", "/dev/shm/", "/var/tmp/x/", "/usr/bin/../../tmp/", "//usr/bin/"]
SYS_DIRS = ["/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/"]
WRAP = ["env ", "env FOO=1 ", "command ", "exec ", "busybox ", "sudo ", "sudo -u ops ", "nice ", "nice -n 5 ", "timeout 5 ", "nohup ", "stdbuf -o0 ", "ionice -c3 ", "setsid ", "time ", "sudo -u ops env "]
for _ in range(90):
    x = r.choice(LR)
    add("linux", "unknown", r.choice(BAD_DIRS) + x, "paths")
for _ in range(30):
    x = r.choice(LR)
    add("linux", "read-only", r.choice(SYS_DIRS) + x, "paths")
for _ in range(40):
    x = r.choice(LR)
    add("linux", "unknown", r.choice(WRAP) + r.choice(BAD_DIRS) + x, "wrappers")
for _ in range(60):
    c, x = r.choice([("dangerous", d) for d in LD] + [("moderate", m) for m in LM] + [("read-only", q) for q in LR])
    w = r.choice(WRAP + ["sh -c '{}'", "bash -c '{}'", "eval {}", "find /tmp -name x -exec {} \\;"])
    cmd = w.format(x) if "{}" in w else w + x
    add("linux", c, cmd, "wrappers")

# RouterOS constructs
RM = pool("routeros", "moderate", lambda s: s.startswith("/"))
RD = pool("routeros", "dangerous", lambda s: s.startswith("/"))
RRO = pool("routeros", "read-only", lambda s: s.startswith("/"))
RX = [("moderate", m) for m in RM] + [("dangerous", d) for d in RD] + [("read-only", q) for q in RRO]
FORMS = [
    ":do {{ {x} }}", ":do {{ {x} }} on-error={{ :put failed }}", ":if (true) do={{ {x} }}",
    ":put [{x}]", ":local v [{x}]", ":global g [{x}]", "/ip address print where address=[{x}]",
    "/interface print where name=[{x}]", ":put (\"a\" . [{x}])", "{{ {x} }}", ":put \"$[{x}]\"",
]
CARRIER = {":global g [{x}]": "moderate"}
for _ in range(120):
    c, x = r.choice(RX)
    f = r.choice(FORMS)
    add("routeros", mx(CARRIER.get(f, "read-only"), c), f.format(x=x), "routeros")
for _ in range(25):
    c, x = r.choice(RX)
    add("routeros", mx("unknown", c), ':execute "' + x.replace('"', '\\"') + '"', "routeros")
PATHS = ["/ip address", "/ip firewall filter", "/interface vlan", "/ip route", "/ppp secret", "/ip dns static",
         "/ip firewall address-list", "/queue simple", "/ip pool", "/ip firewall nat", "/interface bridge port",
         "/ip dhcp-server lease", "/system scheduler", "/interface"]
for p in PATHS:
    for verb in ["remove", "disable"]:
        add("routeros", "dangerous", f":foreach i in=[{p} find] do={{{p} {verb} $i}}", "routeros")
        add("routeros", "dangerous", f":for i from=0 to=20 do={{{p} {verb} $i}}", "routeros")
        add("routeros", "moderate", f":foreach i in=[{p} find where comment=\"old\"] do={{{p} {verb} $i}}", "routeros")
    add("routeros", "dangerous", f":while (true) do={{{p} remove 0}}", "routeros")
    add("routeros", "read-only", f":foreach i in=[{p} find] do={{:put [{p} get $i]}}", "routeros")

# vendor shells
for _ in range(20):
    c, x = r.choice([("dangerous", d) for d in LD] + [("read-only", q) for q in LR])
    add("eos", c, "bash " + x, "shells")
    add("nxos", c, "run bash " + x, "shells")
    add("junos", mx("unknown", c), 'start shell command "' + x + '"', "shells")

# found by the join property test (policy/tests/classify_joins.rs)
RS = [q for q in RRO if q.startswith(":")] + [":put [/system clock get time]", ":foreach i in=[/interface find] do={:put $i}"]
for _ in range(40):
    c, x = r.choice(RX)
    first = r.choice(RS + RRO)
    sep = r.choice([" && ", " || "])
    add("routeros", mx("unknown", c), first + sep + x, "routeros")
for _ in range(20):
    c, x = r.choice(RX)
    add("routeros", mx("unknown", c), "{ :put 1 } " + x, "routeros")
    add("routeros", mx("unknown", c), "/interface print where running && " + x, "routeros")
for _ in range(25):
    c, x = r.choice([("dangerous", d) for d in LD] + [("moderate", m) for m in LM] + [("read-only", q) for q in LR])
    q = r.choice(LR)
    form = r.choice(["cat <({x})", "diff <({q}) <({x})", "{q} > >({x})", "while read l; do echo $l; done < <({x})"])
    # `while` loops are not parsed: unknown at least
    add("linux", mx("unknown", c) if form.startswith("while") else c, form.format(x=x, q=q), "wrappers")
for _ in range(15):
    c, x = r.choice([("dangerous", d) for d in LD] + [("read-only", q) for q in LR if ">" not in q])
    add("eos", c, "run bash " + x, "shells")

seen = set()
with open("classify_families.tsv", "w") as f:
    f.write("# generated by gen_classify.py from classify.tsv: vendor\texpected\tcommand\tfamily\n")
    f.write("# (\\n \\r \\x15 \\x7f \\x08 \\x03 in a command are control characters)\n")
    for v, c, cmd, fam in cases:
        if (v, cmd) in seen:
            continue
        seen.add((v, cmd))
        f.write(f"{v}\t{c}\t{esc(cmd)}\t{fam}\n")
print(len(seen), "cases")
