//! `sealcast-shell`: see the `sealcast_shell` library documentation.

fn main() {
    let code = sealcast_shell::main(std::env::args_os().collect(), std::env::vars_os().collect());
    std::process::exit(i32::from(code));
}
