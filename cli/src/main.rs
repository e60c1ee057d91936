mod policy_cmds;

fn main() {
    let _ = (policy_cmds::run_classify, policy_cmds::run_redact, policy_cmds::run_bench);
}
