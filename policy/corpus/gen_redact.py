#!/usr/bin/env python3
"""Generates redact.jsonl: redaction cases with planted FAKE secrets.
Every secret here is generated test data (FAKE markers, deterministic)."""
import json, random
r = random.Random(4)
A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
def rs(n, al=A): return "".join(r.choice(al) for _ in range(n))
cases = []
def add(kind, text, secrets, keep):
    cases.append({"kind": kind, "text": text, "secrets": secrets, "keep": keep})
for i in range(12):
    pw, sec, comm, ks, tk, psk = "Fake"+rs(8), "$9$"+rs(20), "c0mm"+rs(8), rs(12), "Tk"+rs(10), "Psk"+rs(12)
    add("ios", f"hostname core-{i}\n!\nenable secret 9 {sec}\nusername admin privilege 15 secret 0 {pw}\nsnmp-server community {comm} RO\ninterface GigabitEthernet0/{i}\n ip address 10.{i}.0.1 255.255.255.0\n!\nkey chain K\n key 1\n  key-string 7 {ks}\ntacacs-server key {tk}\ncrypto isakmp key {psk} address 192.0.2.{i+1}\n",
        [sec, pw, comm, ks, tk, psk], [f"core-{i}", f"10.{i}.0.1", "GigabitEthernet0/%d" % i, "snmp-server community", " RO"])
    t7 = rs(18, "0123456789ABCDEF")
    add("ios", f"username ops password 7 {t7}\nenable password Fk{rs(7)}x1\nline vty 0 4\n password 7 {t7}\n transport input ssh\n", [t7], ["username ops", "transport input ssh"])
    add("ios", f"interface Gi0/{i}\n ip ospf authentication-key 7 {t7}\n ip ospf message-digest-key 1 md5 7 {t7}\nrouter bgp 65000\n neighbor 10.0.0.{i} password 7 {t7}\n", [t7], [f"10.0.0.{i}", "router bgp 65000"])
    h9 = "$6$"+rs(8)+"$"+rs(40)
    add("junos", f'system {{\n    host-name edge-{i};\n    root-authentication {{\n        encrypted-password "{h9}"; ## SECRET-DATA\n    }}\n    login {{\n        user ops {{\n            authentication {{\n                encrypted-password "{h9}";\n            }}\n        }}\n    }}\n}}\nprotocols {{\n    ospf {{\n        area 0.0.0.0 {{\n            interface ge-0/0/{i}.0 {{\n                authentication {{\n                    md5 1 key "$9${rs(24)}";\n                }}\n            }}\n        }}\n    }}\n}}\n',
        [h9], [f"edge-{i}", f"ge-0/0/{i}.0"])
    s9 = "$9$"+rs(30)
    add("junos", f'set system root-authentication encrypted-password "{h9}"\nset snmp community {comm} authorization read-only\nset security ike policy p1 pre-shared-key ascii-text "{s9}"\nset interfaces ge-0/0/{i} unit 0 family inet address 10.1.{i}.1/24\n',
        [h9, comm, s9], [f"10.1.{i}.1/24", "set interfaces"])
    wpa, ppp, wgk = "Wpa"+rs(12), "Ppp"+rs(9), rs(43)+"="
    add("routeros", f'/interface wireless security-profiles\nadd authentication-types=wpa2-psk mode=dynamic-keys name=prof{i} wpa2-pre-shared-key={wpa}\n/ppp secret\nadd name=user{i} password={ppp} profile=default\n/interface wireguard\nadd listen-port=13231 name=wg{i} private-key="{wgk}"\n/ip address\nadd address=192.168.{i}.1/24 interface=bridge\n',
        [wpa, ppp, wgk], [f"192.168.{i}.1/24", f"name=user{i}", "interface=bridge"])
    add("routeros", f'/ip ipsec peer\nadd address=203.0.113.{i}/32 secret={psk}\n/radius add address=10.0.0.{i} secret={tk} service=ppp\n/user add name=ops group=full password={pw}\n', [psk, tk, pw], [f"203.0.113.{i}/32", "service=ppp"])
    add("wireguard", f"[Interface]\nPrivateKey = {wgk}\nAddress = 10.8.{i}.1/24\nListenPort = 51820\n\n[Peer]\nPublicKey = {rs(43)}=\nPresharedKey = {rs(43)}=\nAllowedIPs = 10.8.{i}.0/24\n", [wgk], [f"10.8.{i}.1/24", "ListenPort = 51820"])
    aws, aws_s = "AKIA"+rs(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), rs(40)
    gh, gl, sl, st = "ghp_"+rs(36), "glpat-"+rs(20), "xoxb-"+rs(12,"0123456789")+"-"+rs(24), "sk_live_"+rs(24)
    oa = "sk-proj-"+rs(40)
    add("chat", f"hey can you check why the deploy fails? I set AWS_ACCESS_KEY_ID={aws} and aws_secret_access_key = {aws_s} on host build-{i}.example.net (10.20.{i}.5)", [aws, aws_s], [f"build-{i}.example.net", f"10.20.{i}.5"])
    add("chat", f"token for the bot is {sl}, github is {gh} and gitlab {gl}. commit 3f2a9c1d7e8b4a6f0c5d2e1b9a8f7c6d5e4b3a21 broke it", [sl, gh, gl], ["3f2a9c1d7e8b4a6f0c5d2e1b9a8f7c6d5e4b3a21"])
    jwt = "eyJ"+rs(20)+"."+"eyJ"+rs(30)+"."+rs(43)
    add("http", f"curl -H 'Authorization: Bearer {jwt}' https://api.example.com/v1/devices\nAuthorization: Basic {rs(24)}==\n", [jwt], ["https://api.example.com/v1/devices"])
    up = "Up"+rs(10)
    add("url", f"git clone https://deploy:{up}@git.example.com/netops/configs.git\nmysql://app:{up}@db-{i}.internal:3306/app\n", [up], ["git.example.com/netops/configs.git", f"db-{i}.internal:3306/app"])
    add("env", f"STRIPE_KEY={st}\nOPENAI_API_KEY={oa}\nDB_PASSWORD={pw}\nAPI_TOKEN={tk}Xy9\nREGION=eu-west-1\n", [st, oa, pw, tk+"Xy9"], ["REGION=eu-west-1"])
    pem = "\n".join(rs(64, A+"+/") for _ in range(5))
    add("pem", f"here is the key file:\n-----BEGIN OPENSSH PRIVATE KEY-----\n{pem}\n-----END OPENSSH PRIVATE KEY-----\nand the cert is fine", [l for l in pem.split("\n")], ["-----BEGIN OPENSSH PRIVATE KEY-----", "the cert is fine"])
    az = rs(86)+"=="
    add("azure", f"DefaultEndpointsProtocol=https;AccountName=netbk{i};AccountKey={az};EndpointSuffix=core.windows.net", [az], [f"AccountName=netbk{i}"])
# secret-free configs that must come back unchanged
for i in range(40):
    mac = ":".join(rs(2,"0123456789abcdef") for _ in range(6))
    uuid = f"{rs(8,'0123456789abcdef')}-{rs(4,'0123456789abcdef')}-4{rs(3,'0123456789abcdef')}-a{rs(3,'0123456789abcdef')}-{rs(12,'0123456789abcdef')}"
    t = [
        f"hostname dist-{i}\n!\ninterface Vlan{i}\n description users floor {i}\n ip address 172.16.{i}.1 255.255.255.0\n ip helper-address 10.0.0.{i}\n!\nrouter ospf 1\n network 172.16.{i}.0 0.0.0.255 area 0\n passive-interface default\n!\nservice password-encryption\naaa authentication login default group tacacs+ local\nip ssh version 2\nntp server 192.0.2.{i}\n",
        f"/interface bridge\nadd name=bridge{i}\n/ip address\nadd address=10.{i}.1.1/24 interface=bridge{i}\n/ip dhcp-server lease\nadd address=10.{i}.1.50 mac-address={mac.upper()}\n/system identity\nset name=rb-{i}\n",
        f"interfaces {{\n    ge-0/0/{i} {{\n        unit 0 {{\n            family inet {{\n                address 198.51.100.{i}/31;\n            }}\n        }}\n    }}\n}}\nrouting-options {{\n    router-id 10.255.0.{i};\n}}\n",
        f"node {uuid} moved to rack {i}; mac {mac}; commit {rs(40,'0123456789abcdef')} deployed by ops. the password policy requires rotation, please reset the password for the admin account.",
        f"Gi1/0/{i} is up, line protocol is up\n  Hardware is Gigabit Ethernet, address is {mac}\n  Internet address is 10.{i}.2.1/30\n  MTU 1500 bytes, BW 1000000 Kbit/sec\n  5 minute input rate 2000 bits/sec\nkey chain OSPF-KEYS\nsnmp-server location DC1 row {i}\n",
    ][i % 5]
    add("clean", t, [], [])
with open("redact.jsonl", "w") as f:
    for c in cases:
        f.write(json.dumps(c) + "\n")
print(len(cases), "cases")
