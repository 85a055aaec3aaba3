//! The panic hook of every command. The default hook prints the panic's message, and a message
//! can quote the data being processed (slicing a string past a char boundary quotes the
//! string), so a bug in detection would write the very value it was looking at to stderr. This
//! hook prints where the panic happened, and a backtrace when `RUST_BACKTRACE` asks for one
//! (frames name code, not data), never the message.

use std::panic::PanicHookInfo;

/// Replaces the default panic hook for the rest of the process.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{}", describe(info));
        let trace = std::backtrace::Backtrace::capture();
        if trace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{trace}");
        }
    }));
}

/// The line written for a panic: thread and location, never the message.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let at = info.location().map_or_else(
        || "an unknown place".to_string(),
        |l| format!("{}:{}:{}", l.file(), l.line(), l.column()),
    );
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    format!(
        "error: internal error: thread '{name}' panicked at {at} (the panic's message is not shown: \
         it may quote the data being processed); please report it with this line"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_line_names_the_place_and_never_the_message() {
        let seen = Arc::new(Mutex::new(None::<String>));
        let store = seen.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            *store.lock().unwrap() = Some(describe(info));
        }));
        let text = "write to ana.lima@example.org or +1 202-555-0143";
        let result = std::thread::Builder::new()
            .name("detector".into())
            .spawn(move || {
                // The panic a slice past a char boundary raises quotes the whole string.
                let s = format!("中{text}");
                let cut = &s[1..];
                cut.len()
            })
            .unwrap()
            .join();
        std::panic::set_hook(previous);
        assert!(result.is_err());
        let line = seen.lock().unwrap().clone().unwrap();
        assert!(line.contains("src/cli/panic.rs:"), "{line}");
        assert!(line.contains("thread 'detector'"), "{line}");
        for needle in ["ana.lima", "example.org", "555-0143", "char boundary"] {
            assert!(!line.contains(needle), "{needle:?} in {line}");
        }
    }
}
