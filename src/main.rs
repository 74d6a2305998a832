//! The `mmbot` binary: parses the command line and runs one command; the
//! exit status follows one table for every command (`mmbot::cli::exit`).

fn main() {
    match mmbot::cli::run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            mmbot::say!("mmbot: error: {}", mmbot::cli::exit::message_of(&e));
            std::process::exit(mmbot::cli::exit::status_of(&e));
        }
    }
}
