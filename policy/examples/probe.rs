use gatehouse_policy::classify;
use std::io::BufRead;
fn main() {
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let Some((v, cmd)) = line.split_once('\t') else {
            continue;
        };
        let cmd = cmd
            .replace("\\n", "\n")
            .replace("\\x15", "\x15")
            .replace("\\x7f", "\x7f")
            .replace("\\r", "\r")
            .replace("\\x08", "\x08");
        let vd = classify(v.parse().unwrap(), &cmd);
        println!(
            "{:<10} {:<9} {:?}  {:?}",
            v,
            vd.class.as_str(),
            cmd,
            vd.rule_ids
        );
    }
}
