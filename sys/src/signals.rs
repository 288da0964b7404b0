//! Signal handling without async machinery: SIGINT, SIGTERM and SIGHUP are
//! blocked in every thread and one dedicated thread waits for them with
//! sigwait(2), so either runtime is stopped (or reloaded) the same way.

use std::io;
use std::thread;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT or SIGTERM: stop (a second one exits at once).
    Terminate(i32),
    /// SIGHUP: read the configuration again.
    Reload,
}

/// The signal set this process handles.
fn handled_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
    }
    set
}

/// Blocks the handled signals in the calling thread (and every thread it
/// starts afterwards). Call first thing in `main`.
pub fn block() -> io::Result<()> {
    let set = handled_set();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

/// Calls `on_signal` on a helper thread for every handled signal; after the
/// first termination signal, a second one exits the process at once.
pub fn handle(on_signal: impl Fn(Signal) + Send + 'static) -> io::Result<()> {
    thread::Builder::new().name("kafka-proxy-signals".into()).spawn(move || {
        let set = handled_set();
        let mut terminating = false;
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is initialised and `signal` is a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                return;
            }
            if signal == libc::SIGHUP {
                on_signal(Signal::Reload);
            } else if terminating {
                std::process::exit(130);
            } else {
                terminating = true;
                on_signal(Signal::Terminate(signal));
            }
        }
    })?;
    Ok(())
}
