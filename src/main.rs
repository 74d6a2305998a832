//! The `mmbot` binary: parses the command line and runs one command.

fn main() {
    match mmbot::cli::run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("mmbot: error: {e:#}");
            std::process::exit(1);
        }
    }
}
