fn main() {
    eprintln!("gatehouse-sessiond: not yet");
    std::process::exit(2);
}
