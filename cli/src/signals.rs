//! SIGINT/SIGTERM handling without async machinery: the signals are blocked
//! in every thread and one dedicated thread waits for them with sigwait(2),
//! so either runtime can be stopped the same way.
#![allow(unsafe_code)]

use std::io;
use std::thread;

/// The signal set this process handles.
fn termination_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
    }
    set
}

/// Blocks SIGINT and SIGTERM in the calling thread (and every thread it
/// starts afterwards). Call first thing in `main`.
pub fn block() -> io::Result<()> {
    let set = termination_set();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

/// Calls `on_signal` (once, on a helper thread) when SIGINT or SIGTERM
/// arrives; a second signal exits the process at once.
pub fn on_termination(on_signal: impl FnOnce(i32) + Send + 'static) -> io::Result<()> {
    thread::Builder::new().name("kafka-proxy-signals".into()).spawn(move || {
        let set = termination_set();
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is initialised and `signal` is a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            return;
        }
        on_signal(signal);
        // SAFETY: as above.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            std::process::exit(130);
        }
    })?;
    Ok(())
}
