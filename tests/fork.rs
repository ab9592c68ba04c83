//! Session IDs (and nonces, drawn from the same generator) stay unique
//! across `fork`: a child must not replay its parent's random stream.
//!
//! This test calls `fork` itself, which needs `unsafe`; the library has none.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![cfg(unix)]
#![allow(unsafe_code)]

use std::io::{Read as _, Write as _};

use sealed_session::Session;

fn ids(n: usize) -> Vec<[u8; 16]> {
    (0..n).map(|_| *Session::new(()).id().as_bytes()).collect()
}

#[test]
fn a_forked_child_does_not_repeat_the_parents_session_ids() {
    // Warm this thread's generator so that the child inherits its state.
    let _ = ids(4);
    let (mut reader, mut writer) = std::io::pipe().unwrap();

    // SAFETY: the child only draws IDs, writes them to a pipe and exits with
    // `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let bytes: Vec<u8> = ids(64).concat();
        let ok = writer.write_all(&bytes).is_ok();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    drop(writer);
    let parent = ids(64);
    let mut child = Vec::new();
    reader.read_to_end(&mut child).unwrap();
    let mut status = 0;
    // SAFETY: waits for the child started above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(status, 0, "child failed");
    assert_eq!(child.len(), 64 * 16);
    let child: Vec<[u8; 16]> = child.chunks_exact(16).map(|c| c.try_into().unwrap()).collect();
    for id in &child {
        assert!(!parent.contains(id), "the child repeated an ID of its parent");
    }
}
