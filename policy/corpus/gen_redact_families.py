#!/usr/bin/env python3
"""Generates redact_families.jsonl: redaction cases per family of issue 16,
each with random FAKE values drawn from every character class the context
allows (lower, upper, digits, the punctuation the syntax permits, blanks
inside quotes, non-ASCII where the value is a keychain secret).

Every line: {"family", "text", "expect", "secrets", "exact"}.
  text     the input;
  expect   the input with every planted value replaced by <M> (a pattern
           mask) or {{keychain:NAME}} (an exact-layer reference): the test
           normalises the redactor's masks to <M> and compares the whole
           text, so a value left over, a mask too wide or anything else
           changed fails;
  secrets  the planted values (none may survive);
  exact    [[name, value], ...] keychain values for the exact layer (the
           test then runs `redact` instead of `redact_patterns`).

Families:
  cmdargs   credentials in command arguments (curl -u/--user, wget/--*-password,
            sshpass -p, mysql -p, PGPASSWORD=/SSHPASS=/MYSQL_PWD=, -H
            Authorization headers, user:pass@ in URLs, --token/--api-key/
            --secret/--password in both `--flag value` and `--flag=value`
            forms, quoted or not);
  devcfg    device keys whose value has punctuation/quotes/`7 <hash>`:
            RADIUS, TACACS+, NTP authentication, BGP neighbor passwords,
            OSPF/IS-IS authentication, VRRP/HSRP authentication;
  snmphost  `snmp-server host … [version 1|2c] COMMUNITY`;
  escaped   keychain values with quotes, backslashes, `$`, `?`, blanks and
            non-ASCII printed escaped (backslash, RouterOS export, JSON),
            quoted, with doubled quotes, URL-/percent-/form-encoded, as
            base64, as HTML entities, and split by a line wrap at the
            device's width.

Deterministic (seeded): cd policy/corpus && python3 gen_redact_families.py
"""
import base64
import json
import random
import re
import urllib.parse

r = random.Random(1616)
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGIT = "0123456789"


def value(punct, lo=6, hi=22, space=False, extra=""):
    """A random value: a random subset of the character classes (at least
    one), every chosen class present."""
    classes = [LOWER, UPPER, DIGIT]
    if punct:
        classes.append(punct)
    if space:
        classes.append(" ")
    if extra:
        classes.append(extra)
    while True:
        k = r.randint(1, len(classes))
        chosen = r.sample(classes, k)
        if chosen == [" "]:
            continue
        n = r.randint(max(lo, len(chosen)), hi)
        v = [r.choice(c) for c in chosen]
        pool = "".join(chosen)
        v += [r.choice(pool) for _ in range(n - len(v))]
        r.shuffle(v)
        v = "".join(v)
        if v.strip() != v or "  " in v:
            continue
        if template(v):
            continue
        return v


def template(v):
    """Shapes the redactor treats as a placeholder, not a secret."""
    return (v.startswith(("{{", "${", "$(", "***", "keychain:", "[redacted"))
            or (v.startswith("<") and v.endswith(">"))
            or (v.startswith("%") and v.endswith("%"))
            or v.lower() == "redacted")


cases = []


def add(family, parts, exact=None):
    """parts: list of str (kept text) or (shown, secret, repl) tuples."""
    text = "".join(p if isinstance(p, str) else p[0] for p in parts)
    expect = "".join(p if isinstance(p, str) else p[2] for p in parts)
    secrets = [p[1] for p in parts if not isinstance(p, str)]
    cases.append({"family": family, "text": text, "expect": expect,
                  "secrets": secrets, "exact": exact or []})


def M(v, shown=None):
    return (v if shown is None else shown, v, "<M>")


HOSTS = ["db-1.internal", "10.20.30.40", "api.example.net", "git.example.com", "192.0.2.7"]
SH_UNQ = "-_.+/=@%:,^~!"
SH_DQ = SH_UNQ + " '&|;<>()[]{}#*?"
SH_SQ = SH_UNQ + " \"\\$`&|;<>()[]{}#*?"


def shell_value():
    """(shown, value) in one of the three shell quotings."""
    q = r.choice(["", '"', "'"])
    if q == "":
        v = value(SH_UNQ)
    elif q == '"':
        v = value(SH_DQ, space=True)
    else:
        v = value(SH_SQ, space=True)
    return q, v


# ---- cmdargs -------------------------------------------------------------
for _ in range(330):
    host = r.choice(HOSTS)
    user = r.choice(["ops", "admin", "svc-backup", "deploy", "root"])
    form = r.randrange(14)
    q, v = shell_value()
    if form == 0:
        flag = r.choice(["-u ", "--user ", "--user=", "-u", "--proxy-user "])
        add("cmdargs", [f"curl -s {flag}{q}{user}:", M(v), f"{q} https://{host}/api/v1/status"])
    elif form == 1:
        flag = r.choice(["--password", "--http-password", "--ftp-password", "--proxy-password"])
        sep = r.choice(["=", " "])
        add("cmdargs", [f"wget --user={user} {flag}{sep}{q}", M(v), f"{q} https://{host}/backup.tgz"])
    elif form == 2:
        glued = r.random() < 0.4
        add("cmdargs", [f"sshpass -p{'' if glued else ' '}{q}", M(v), f"{q} ssh {user}@{host} uptime"])
    elif form == 3:
        tool = r.choice(["mysql", "mysqldump", "mysqladmin"])
        if r.random() < 0.5:
            add("cmdargs", [f"{tool} -h {host} -u{user} -p{q}", M(v), f"{q} appdb"])
        else:
            add("cmdargs", [f"{tool} -h {host} -u {user} --password={q}", M(v), f"{q} appdb"])
    elif form == 4:
        var = r.choice(["PGPASSWORD", "SSHPASS", "MYSQL_PWD", "REDISCLI_AUTH"])
        pre = r.choice(["", "export ", "env "])
        tail = {"PGPASSWORD": f" psql -h {host} -U {user} appdb", "SSHPASS": f" sshpass -e ssh {user}@{host}",
                "MYSQL_PWD": f" mysql -h {host} -u {user}", "REDISCLI_AUTH": f" redis-cli -h {host} info"}[var]
        if pre == "export ":
            tail = f"; {tail.strip()}"
        add("cmdargs", [f"{pre}{var}={q}", M(v), f"{q}{tail}"])
    elif form == 5:
        scheme = r.choice(["Basic", "Bearer", "Token", "token", "bearer"])
        tok = value("-._~+/", lo=16, hi=40) + r.choice(["", "=", "=="])
        hq = r.choice(['"', "'"])
        hflag = r.choice(["-H ", "--header ", "-H"])
        add("cmdargs", [f"curl {hflag}{hq}Authorization: {scheme} ", M(tok), f"{hq} https://{host}/v2/devices"])
    elif form == 6:
        pw = value("!$&()*+,;=~-._:", lo=6, hi=20)
        scheme = r.choice(["https", "ftp", "ssh", "postgres", "mysql", "redis", "amqp"])
        u = r.choice([user, ""]) if scheme == "redis" else user
        add("cmdargs", [f"git clone {scheme}://{u}:", M(pw), f"@{host}/netops/configs.git"] if scheme == "https"
            else [f"connect {scheme}://{u}:", M(pw), f"@{host}:5432/app now"])
    else:
        flag = r.choice(["--token", "--api-key", "--apikey", "--secret", "--client-secret", "--auth-token",
                         "--access-token", "--password", "--api-token", "--secret-key"])
        sep = r.choice(["=", " "])
        tool = r.choice(["netbox-cli", "gh", "vault login", "./sync.py", "ansible-playbook site.yml", "terraform apply"])
        add("cmdargs", [f"{tool} --host {host} {flag}{sep}{q}", M(v), f"{q} --verbose"])

# ---- devcfg --------------------------------------------------------------
CFG_PUNCT = "!.,;:)(}{][&'#@%^*+=-_/~|<>?"


def cfg_value():
    """(shown, value): unquoted values may end in punctuation; quoted ones
    may hold blanks."""
    if r.random() < 0.3:
        v = value("!.,;:)(}{][&'#@%^*+=-_/~|<>", space=True)
        return f'"{v}"', v, True
    v = value(CFG_PUNCT.replace("?", ""))
    if r.random() < 0.5:
        v = v + r.choice("!.,;:)}]&'#")  # ends in punctuation
    return v, v, False


HEX7 = lambda: "".join(r.choice("0123456789ABCDEF") for _ in range(r.choice([12, 14, 18, 20, 22])))
for _ in range(330):
    ip = f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
    form = r.randrange(16)
    shown, v, quoted = cfg_value()
    typ = r.random() < 0.3
    if typ:
        v = HEX7()
        shown = v
    t7 = "7 " if typ else ""
    tq = (shown if not quoted else f'"{v}"')

    def sec(prefix, suffix="\n"):
        lead = prefix + t7 + ('"' if quoted and not typ else "")
        tail = ('"' if quoted and not typ else "") + suffix
        add("devcfg", [lead, M(v), tail])

    if form == 0:
        sec("radius-server key ")
    elif form == 1:
        sec(f"radius-server host {ip} auth-port 1812 acct-port 1813 key ")
    elif form == 2:
        sec(f"radius server R{r.randrange(9)}\n address ipv4 {ip} auth-port 1812\n key ")
    elif form == 3:
        sec(f"tacacs-server host {ip} key ")
    elif form == 4:
        sec(f"tacacs server T{r.randrange(9)}\n address ipv4 {ip}\n key ")
    elif form == 5:
        sec("tacacs-server key ")
    elif form == 6:
        n = r.choice(["1", "10", "42", "65535"])
        if typ:
            add("devcfg", [f"ntp authentication-key {n} md5 ", M(v), " 7\nntp trusted-key " + n + "\n"])
        else:
            sec(f"ntp authentication-key {n} md5 ")
    elif form == 7:
        sec(f"router bgp 65001\n neighbor {ip} remote-as 65002\n neighbor {ip} password ")
    elif form == 8:
        sec(f"interface Gi0/{r.randrange(48)}\n ip ospf authentication-key ")
    elif form == 9:
        sec(f"interface Gi0/{r.randrange(48)}\n ip ospf message-digest-key {r.randrange(1, 255)} md5 ")
    elif form == 10:
        lvl = r.choice(["", " level-1", " level-2"])
        sec(f"interface Gi0/{r.randrange(48)}\n isis password ", lvl + "\n")
    elif form == 11:
        sec(f"router isis CORE\n {r.choice(['area-password', 'domain-password'])} ", r.choice(["", " authenticate snp validate"]) + "\n")
    elif form == 12:
        g = r.randrange(1, 255)
        if r.random() < 0.5:
            sec(f"interface Vlan{g}\n vrrp {g} authentication text ")
        else:
            sec(f"interface Vlan{g}\n vrrp {g} authentication md5 key-string ")
    elif form == 13:
        g = r.randrange(1, 255)
        if r.random() < 0.5:
            sec(f"interface Vlan{g}\n standby {g} authentication ")
        else:
            sec(f"interface Vlan{g}\n standby {g} authentication md5 key-string ")
    elif form == 14:
        # NX-OS / EOS: key type 7 with the value quoted
        kq = '"' if r.random() < 0.5 else ""
        kv = HEX7() if typ else value("!.,;:)(}{][&'#@%^*+=-_/~|<>", space=bool(kq))
        add("devcfg", [f"radius-server host {ip} key 7 {kq}", M(kv), f"{kq} authentication accounting\n"])
    else:
        # Junos set-style, plaintext the operator typed
        what = r.choice([f"set system radius-server {ip} secret ", f"set system tacplus-server {ip} secret ",
                         "set protocols bgp group EXT authentication-key ",
                         f"set protocols ospf area 0 interface ge-0/0/{r.randrange(9)}.0 authentication md5 1 key "])
        jv = value("!.,:)(}{][&'#@%^*+=-_/~|<>", space=True)
        add("devcfg", [what + '"', M(jv), '"\n'])

# ---- snmphost ------------------------------------------------------------
for _ in range(120):
    ip = f"192.0.2.{r.randrange(1, 255)}"
    comm = value("!.,:)(}{][&'#@%^*+=-_/~|<>")
    vrf = r.choice(["", " vrf MGMT", " use-vrf management"]) if r.random() < 0.3 else ""
    kind = r.choice(["", " traps", " informs"])
    ver = r.choice([" version 2c", " version 1", " version 2c", ""])
    tail = r.choice(["", " udp-port 162", " udp-port 1162 bgp config", " snmp"])
    lead = f"snmp-server host {ip}"
    if vrf == " vrf MGMT":
        lead, vrf = lead + vrf, ""
    add("snmphost", [f"{lead}{kind}{ver} ", M(comm), f"{tail}{vrf}\n"])

# ---- escaped (exact layer) -----------------------------------------------
ESC_PUNCT = "\"\\$?'!@#%^&*()-_=+[]{};:,.<>/|~`"
NONASCII = "éüß€ø"


def ros_escape(v):
    out = []
    for ch in v:
        if ch in '"\\$?':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) > 0x7e:
            out.extend("\\%02X" % b for b in ch.encode())
        else:
            out.append(ch)
    return "".join(out)


def html(v):
    return (v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def pct_lower(s):
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), s)


FORMS = {
    "backslash": lambda v: v.replace("\\", "\\\\").replace('"', '\\"'),
    "routeros-export": ros_escape,
    "json": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "json-ascii": lambda v: json.dumps(v)[1:-1],
    "doubled-quotes": lambda v: v.replace('"', '""'),
    "doubled-single": lambda v: v.replace("'", "''"),
    "shell-single": lambda v: v.replace("'", "'\\''"),
    "quoted": lambda v: v,
    "url": lambda v: urllib.parse.quote(v, safe=""),
    "url-lower": lambda v: pct_lower(urllib.parse.quote(v, safe="")),
    "url-path": lambda v: urllib.parse.quote(v, safe="/"),
    "uri-component": lambda v: urllib.parse.quote(v, safe="!'()*-._~"),
    "form": lambda v: urllib.parse.quote_plus(v, safe=""),
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "base64url": lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="),
    "html": html,
}
# {run} is a kept number, {} the printed secret
CONTEXTS = {
    "backslash": ['set-secret "{}" on run{run}', 'secret="{}" host=run{run}'],
    "routeros-export": ['/ppp secret\nadd name=user{run} password="{}" profile=default\n',
                        '/interface wireless security-profiles set [ find default=yes ] wpa2-pre-shared-key="{}" comment=site{run}\n'],
    "json": ['{"name": "dev{run}", "cred": "{}"}'],
    "json-ascii": ['{"name": "dev{run}", "cred": "{}"}'],
    "doubled-quotes": ['dev{run},"{}",active'],
    "doubled-single": ["INSERT INTO creds VALUES ('dev{run}', '{}');"],
    "shell-single": ["echo 'run{run}' && login --cred '{}' --verbose"],
    "quoted": ['login "{}" run{run}'],
    "url": ["GET /login?user=ops&run={run}&cred={}&next=1"],
    "url-lower": ["GET /login?user=ops&run={run}&cred={}&next=1"],
    "url-path": ["fetch https://cfg.example.net/run{run}/{}/config"],
    "uri-component": ["GET /api?run={run}&cred={}"],
    "form": ["POST body: run={run}&cred={}&submit=1"],
    "base64": ["run{run} blob {} end"],
    "base64url": ["run{run} token {} end"],
    "html": ['<td class="run{run}">{}</td>'],
}
names = 0
for form, enc in FORMS.items():
    for _ in range(26):
        extra = NONASCII if form != "html" and r.random() < 0.3 else ""
        v = value(ESC_PUNCT, lo=8, hi=24, space=r.random() < 0.3, extra=extra)
        # every escape family has something to escape
        if form in ("backslash", "routeros-export", "json", "json-ascii") and not any(c in v for c in '"\\$?'):
            v = v[:3] + r.choice('"\\') + v[3:]
        if form == "doubled-quotes" and '"' not in v:
            v = v[:2] + '"' + v[2:]
        if form in ("doubled-single", "shell-single") and "'" not in v:
            v = v[:2] + "'" + v[2:]
        shown = enc(v)
        names += 1
        name = f"fam-{names}"
        ref = "{{keychain:" + name + "}}"
        ctx = r.choice(CONTEXTS[form]).replace("{run}", str(r.randrange(100)))
        pre, post = ctx.split("{}")
        printed = shown
        # a third of the cases wrap the line at the device's width (80 or
        # 132 columns), with the wrap inside the printed value
        if r.random() < 0.35:
            width = r.choice([80, 132])
            cut = r.randrange(1, len(shown))
            line_start = pre.rfind("\n") + 1
            lead = width - (len(pre) - line_start) - cut
            if lead > 0:
                pre = pre[:line_start] + "#" * (lead - 1) + " " + pre[line_start:]
                printed = shown[:cut] + r.choice(["\n", "\r\n"]) + shown[cut:]
        cases.append({"family": "escaped", "form": form, "text": pre + printed + post,
                      "expect": pre + ref + post, "secrets": [shown], "exact": [[name, v]]})

# ---- clean: the same commands and keys without a secret stay unchanged ---
CLEAN = [
    "mysql -h {h} -u ops -p appdb", "mysql -h {h} -u ops --password appdb", "curl -u ops https://{h}/x",
    "curl -s https://{h}/api/v1/status -H 'Accept: application/json'", "wget https://{h}/backup.tgz",
    "sshpass -e ssh ops@{h} uptime", "gh auth login --with-token < token.txt", "vault login -method=oidc",
    "psql -h {h} -U ops appdb", "export PGHOST={h}", "git clone https://{h}/netops/configs.git",
    "git clone ssh://git@{h}/netops/configs.git", "terraform apply --token-file=/etc/tf/token",
    "key chain OSPF-KEYS", " key {n}", "crypto key generate rsa modulus 2048", "crypto key zeroize rsa",
    "snmp-server host {ip} version 3 auth ops-user", "snmp-server host {ip} version 3 priv monitor udp-port 162",
    "snmp-server enable traps", "snmp-server location DC1 row {n}", "snmp-server contact noc@example.net",
    " standby {n} ip 10.1.{n}.1", " standby {n} priority 110", " standby {n} preempt", " standby {n} authentication md5 key-chain HSRP-KEYS",
    " vrrp {n} ip 10.2.{n}.1", " vrrp {n} authentication md5 key-chain VRRP-KEYS", " vrrp {n} priority 120",
    " ip ospf authentication message-digest", " isis authentication mode md5 level-2", " isis authentication key-chain ISIS-KEYS",
    "ntp authenticate", "ntp trusted-key {n}", "ntp server {ip} key {n}", "radius-server dead-criteria time 5 tries 3",
    "tacacs-server timeout 5", "aaa authentication login default group tacacs+ local", " neighbor {ip} remote-as 65002",
    "ip radius source-interface Loopback0", "radius server R{n}", " address ipv4 {ip} auth-port 1812 acct-port 1813",
    "set system radius-server {ip} port 1812", "set protocols bgp group EXT neighbor {ip}",
]
for i in range(150):
    ip = f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
    t = r.choice(CLEAN).format(h=r.choice(HOSTS), n=r.randrange(1, 200), ip=ip) + "\n"
    cases.append({"family": "clean", "text": t, "expect": t, "secrets": [], "exact": []})

with open("redact_families.jsonl", "w") as f:
    for c in cases:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
fams = {}
for c in cases:
    fams[c["family"]] = fams.get(c["family"], 0) + 1
print(len(cases), "cases", fams)
