//! What a seed that panicked reports: the panic's message and where it was raised.
//!
//! A caught panic's payload holds only the message; the location is known only to the panic
//! hook. The hook below (installed once, in front of the default one, which still prints) keeps
//! the first panic of each simulation thread — named `sim-seed-N` by `mc_rt::fault::simulate` —
//! so the seed's failure can say where it broke.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Mutex, Once};

static FIRST_PANIC: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
static HOOK: Once = Once::new();

/// Installs the hook; every seed run calls it, only the first call does anything.
pub fn install_hook() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name() {
                if name.starts_with("sim-seed-") {
                    let at = info
                        .location()
                        .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                        .unwrap_or_default();
                    let text = format!("{}{at}", payload_text(info.payload()));
                    if let Ok(mut first) = FIRST_PANIC.lock() {
                        first.entry(name.to_string()).or_insert(text);
                    }
                }
            }
            default(info)
        }));
    });
}

/// The first panic recorded on seed `seed`'s simulation thread, with its location, or else the
/// payload's message.
pub fn panic_text(seed: u64, payload: &(dyn Any + Send)) -> String {
    let recorded = FIRST_PANIC
        .lock()
        .ok()
        .and_then(|mut first| first.remove(&format!("sim-seed-{seed}")));
    recorded.unwrap_or_else(|| payload_text(payload))
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
