//! An audit sink for tests that keeps every event until they are taken;
//! included by the test binaries that read the audit log.

use std::sync::{Arc, Mutex};

use sealed_session::web::{AuditEvent, AuditSink};

/// Keeps every event it is given, in order.
#[derive(Clone, Default)]
pub(crate) struct Recorder(pub(crate) Arc<Mutex<Vec<AuditEvent>>>);

impl Recorder {
    /// The events recorded since the last call.
    pub(crate) fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl AuditSink for Recorder {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}
