//! Host name resolution off the event loop: one helper thread runs the
//! blocking resolver and wakes the loop when an answer is ready.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;

use mio::Waker;
use tracing::warn;

/// A resolved (or failed) name for one connection.
pub(crate) struct Answer {
    /// The connection's slot.
    pub slot: usize,
    /// The session id, to ignore answers for a slot that was reused.
    pub session: u64,
    pub result: io::Result<Vec<SocketAddr>>,
}

struct Question {
    slot: usize,
    session: u64,
    host: String,
    port: u16,
}

/// Resolves names on a helper thread.
pub(crate) struct Resolver {
    questions: Option<Sender<Question>>,
    answers: Receiver<Answer>,
}

impl Resolver {
    /// Starts the helper thread; it wakes `waker` after each answer.
    pub(crate) fn new(waker: Arc<Waker>) -> Resolver {
        let (q_tx, q_rx) = channel::<Question>();
        let (a_tx, a_rx) = channel::<Answer>();
        let spawned = thread::Builder::new().name("kafka-proxy-dns".into()).spawn(move || {
            for q in q_rx {
                let result = (q.host.as_str(), q.port).to_socket_addrs().map(Iterator::collect);
                if a_tx.send(Answer { slot: q.slot, session: q.session, result }).is_err() {
                    return;
                }
                if let Err(e) = waker.wake() {
                    warn!(error = %e, "cannot wake the event loop after a DNS answer");
                }
            }
        });
        let questions = match spawned {
            Ok(_) => Some(q_tx),
            Err(e) => {
                warn!(error = %e, "cannot start the DNS thread; host names will not resolve");
                None
            }
        };
        Resolver { questions, answers: a_rx }
    }

    /// Asks for the addresses of `host` on behalf of the connection in `slot`.
    pub(crate) fn resolve(&self, slot: usize, session: u64, host: &str, port: u16) {
        if let Some(q) = &self.questions {
            let _ = q.send(Question { slot, session, host: host.to_owned(), port });
        }
    }

    /// The answers that arrived so far.
    pub(crate) fn answers(&self) -> Vec<Answer> {
        self.answers.try_iter().collect()
    }
}
