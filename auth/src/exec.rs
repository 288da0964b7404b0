//! The exec plugin: a long-running helper program the proxy starts at the
//! first login and starts again (at most once a second) after it exits.
//!
//! # Protocol
//!
//! One JSON object per line, UTF-8, on the helper's stdin and stdout (its
//! stderr goes to the proxy's). For each login the proxy writes
//!
//! ```json
//! {"id":7,"user":"alice","password":"secret","client":"192.0.2.10:50312","mechanism":"PLAIN"}
//! ```
//!
//! (`client` is `null` when unknown) and the helper answers, in any order,
//!
//! ```json
//! {"id":7,"allow":true,"principal":"alice"}
//! {"id":8,"allow":false,"reason":"invalid credentials"}
//! ```
//!
//! `principal` (optional) replaces the user name as the client's principal;
//! `reason` is logged, never sent to the client. A reply may instead carry
//! `"error":"..."` for "cannot decide" (the login fails). Many requests may
//! be in flight at once; answers are matched by `id`. A line longer than
//! 64 KiB, or one that does not parse, is logged and dropped. When the
//! helper exits, the logins it had not answered fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kafka_proxy_core::sasl::{AuthRequest, Verdict};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;
use tracing::{info, warn};

/// Longest answer line read from the helper.
const MAX_LINE: u64 = 64 * 1024;
/// Shortest pause between two starts of the helper.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Verdict>>>>;

/// The helper process and the logins it owes an answer.
pub(crate) struct ExecPlugin {
    command: PathBuf,
    args: Vec<String>,
    next_id: AtomicU64,
    running: tokio::sync::Mutex<Running>,
}

#[derive(Default)]
struct Running {
    stdin: Option<ChildStdin>,
    pending: Pending,
    started: Option<Instant>,
    /// Cleared by the reader when the helper's stdout ends.
    alive: Arc<std::sync::atomic::AtomicBool>,
}

/// One answer line.
#[derive(Debug, Deserialize)]
struct Answer {
    id: u64,
    #[serde(default)]
    allow: bool,
    principal: Option<String>,
    reason: Option<String>,
    error: Option<String>,
}

impl ExecPlugin {
    pub(crate) fn new(command: PathBuf, args: Vec<String>) -> ExecPlugin {
        ExecPlugin {
            command,
            args,
            next_id: AtomicU64::new(1),
            running: tokio::sync::Mutex::new(Running::default()),
        }
    }

    /// Asks the helper; the caller bounds the wait.
    pub(crate) async fn check(&self, request: &AuthRequest) -> Verdict {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = serde_json::json!({
            "id": id,
            "user": request.user,
            "password": request.password.expose(),
            "client": request.client.map(|c| c.to_string()),
            "mechanism": "PLAIN",
        });
        let mut line = line.to_string();
        line.push('\n');
        let (tx, rx) = oneshot::channel();
        let pending = {
            let mut running = self.running.lock().await;
            if let Err(e) = self.ensure_started(&mut running) {
                return Verdict::Error(e);
            }
            running.pending.lock().unwrap_or_else(PoisonError::into_inner).insert(id, tx);
            let written = match running.stdin.as_mut() {
                Some(stdin) => stdin.write_all(line.as_bytes()).await.and(stdin.flush().await),
                None => Err(std::io::Error::other("no stdin")),
            };
            if let Err(e) = written {
                running.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                running.stdin = None;
                running.alive.store(false, Ordering::Relaxed);
                return Verdict::Error(format!("cannot write to the plugin {}: {e}", self.command.display()));
            }
            running.pending.clone()
        };
        // Forgotten if the caller gives up (timeout) before the answer.
        let guard = Forget { pending, id };
        let verdict = rx
            .await
            .unwrap_or_else(|_| Verdict::Error(format!("the plugin {} exited", self.command.display())));
        drop(guard);
        verdict
    }

    /// Starts the helper unless it runs (at most once per `RESTART_PAUSE`).
    fn ensure_started(&self, running: &mut Running) -> Result<(), String> {
        if running.stdin.is_some() && running.alive.load(Ordering::Relaxed) {
            return Ok(());
        }
        if running.started.is_some_and(|t| t.elapsed() < RESTART_PAUSE) {
            return Err(format!("the plugin {} exited and restarts shortly", self.command.display()));
        }
        running.started = Some(Instant::now());
        let mut child = Command::new(&self.command)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the plugin {}: {e}", self.command.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the plugin's stdin/stdout are not pipes".into());
        };
        info!(plugin = %self.command.display(), pid = child.id(), "external authentication plugin started");
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        tokio::spawn(read_answers(child, stdout, pending.clone(), alive.clone(), self.command.clone()));
        // Logins the previous helper still owed fail now (their senders drop).
        *running = Running { stdin: Some(stdin), pending, started: running.started, alive };
        Ok(())
    }
}

/// Removes a login's slot when its wait ends, answered or not.
struct Forget {
    pending: Pending,
    id: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// Reads the helper's answers until its stdout ends, then reaps it.
async fn read_answers(
    mut child: Child,
    stdout: ChildStdout,
    pending: Pending,
    alive: Arc<std::sync::atomic::AtomicBool>,
    command: PathBuf,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader).take(MAX_LINE + 1).read_until(b'\n', &mut line).await;
        match read {
            Ok(0) => break,
            Ok(_) if line.last() != Some(&b'\n') && line.len() as u64 > MAX_LINE => {
                warn!(plugin = %command.display(), "answer line longer than 64 KiB; the plugin is stopped");
                break;
            }
            Ok(_) => deliver(&line, &pending, &command),
            Err(e) => {
                warn!(plugin = %command.display(), error = %e, "cannot read the plugin's answers");
                break;
            }
        }
    }
    alive.store(false, Ordering::Relaxed);
    pending.lock().unwrap_or_else(PoisonError::into_inner).clear();
    let _ = child.start_kill();
    match child.wait().await {
        Ok(status) => warn!(plugin = %command.display(), %status, "external authentication plugin exited"),
        Err(e) => warn!(plugin = %command.display(), error = %e, "external authentication plugin lost"),
    }
}

/// Routes one answer line to the login waiting for it.
fn deliver(line: &[u8], pending: &Pending, command: &std::path::Path) {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return;
    }
    let answer: Answer = match serde_json::from_slice(trimmed) {
        Ok(a) => a,
        Err(e) => {
            warn!(plugin = %command.display(), error = %e, "unreadable answer line dropped");
            return;
        }
    };
    let verdict = match (answer.error, answer.allow) {
        (Some(error), _) => Verdict::Error(format!("the plugin says: {error}")),
        (None, true) => Verdict::Allow { principal: answer.principal },
        (None, false) => Verdict::Deny { reason: answer.reason },
    };
    let waiting = pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&answer.id);
    match waiting {
        Some(tx) => {
            let _ = tx.send(verdict);
        }
        None => warn!(plugin = %command.display(), id = answer.id, "answer for no waiting login dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_proxy_core::sasl::SecretString;

    /// A helper written in shell: allows password "right", names the principal
    /// after the user, answers "error" for user "broken", and exits for "crash".
    const HELPER: &str = r#"
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed 's/.*"id":\([0-9]*\).*/\1/')
  case "$line" in
    *'"user":"crash"'*) exit 3 ;;
    *'"user":"broken"'*) printf '{"id":%s,"error":"directory down"}\n' "$id" ;;
    *'"password":"right"'*) printf 'not json\n{"id":%s,"allow":true,"principal":"User-%s"}\n' "$id" "$id" ;;
    *) printf '{"id":%s,"allow":false,"reason":"bad password"}\n' "$id" ;;
  esac
done
"#;

    fn req(user: &str, password: &str) -> AuthRequest {
        AuthRequest {
            id: 1,
            user: user.into(),
            password: SecretString::new(password.into()),
            client: Some("127.0.0.1:1".parse().unwrap()),
        }
    }

    fn plugin() -> ExecPlugin {
        ExecPlugin::new("/bin/sh".into(), vec!["-c".into(), HELPER.into()])
    }

    #[test]
    fn allow_deny_error_and_restart_after_an_exit() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let p = plugin();
            let allowed = p.check(&req("alice", "right")).await;
            assert_eq!(allowed, Verdict::Allow { principal: Some("User-1".into()) });
            assert_eq!(p.check(&req("alice", "wrong")).await, Verdict::Deny { reason: Some("bad password".into()) });
            assert!(matches!(p.check(&req("broken", "x")).await, Verdict::Error(e) if e.contains("directory down")));
            assert!(matches!(p.check(&req("crash", "x")).await, Verdict::Error(e) if e.contains("exited")));
            // Within the restart pause: refused at once, then started again.
            assert!(matches!(p.check(&req("alice", "right")).await, Verdict::Error(e) if e.contains("restarts shortly")));
            tokio::time::sleep(RESTART_PAUSE).await;
            assert!(matches!(p.check(&req("alice", "right")).await, Verdict::Allow { .. }));
        });
    }

    #[test]
    fn a_missing_program_is_an_error_not_a_hang() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let p = ExecPlugin::new("/nonexistent/auth-plugin".into(), vec![]);
        let verdict = rt.block_on(p.check(&req("alice", "right")));
        assert!(matches!(verdict, Verdict::Error(e) if e.contains("cannot start the plugin")));
    }
}
