//! Where the advisor's messages go: failures, recoveries, the budget, a
//! dead route, the client's own notices. On stderr as they happen when the
//! advisor owns nothing on screen ([`AdvisorOptions::print`]); otherwise
//! into a small queue that the dashboard drains
//! ([`AdvisorHandle::drain_messages`]), so nothing prints over it.
//!
//! [`AdvisorOptions::print`]: super::AdvisorOptions::print
//! [`AdvisorHandle::drain_messages`]: super::AdvisorHandle::drain_messages

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Most messages kept for a drain; older ones are dropped first (a
/// dashboard that never drains must not grow memory).
pub const MAX_QUEUED: usize = 64;

/// The advisor's outlet for messages; cheap to clone (threads share one).
#[derive(Debug, Clone)]
pub struct Messenger {
    print: bool,
    queue: Arc<Mutex<VecDeque<String>>>,
}

impl Messenger {
    pub fn new(print: bool) -> Self {
        Self { print, queue: Arc::new(Mutex::new(VecDeque::new())) }
    }

    /// Says `text` (no prefix: `mmbot: ai: ` is added on stderr).
    pub fn say(&self, text: impl Into<String>) {
        let text = text.into();
        if self.print {
            crate::say!("mmbot: ai: {text}");
            return;
        }
        if let Ok(mut q) = self.queue.lock() {
            if q.len() >= MAX_QUEUED {
                q.pop_front();
            }
            q.push_back(text);
        }
    }

    /// The queued messages, oldest first (empty when printing).
    pub fn drain(&self) -> Vec<String> {
        self.queue.lock().map(|mut q| q.drain(..).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_keeps_the_newest_messages() {
        let m = Messenger::new(false);
        for i in 0..MAX_QUEUED + 5 {
            m.say(format!("message {i}"));
        }
        let got = m.drain();
        assert_eq!(got.len(), MAX_QUEUED);
        assert_eq!(got[0], "message 5");
        assert!(m.drain().is_empty(), "drained once");
    }
}
