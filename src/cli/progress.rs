//! Progress rendering for builds: `plain` (BuildKit-like numbered lines, for CI), `tty` (a live
//! view of running steps with the tail of their output) and `json` (one event per line).

use crate::engine::{BuildEvent, Reporter};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

/// Which renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    Json,
    Quiet,
}

impl Mode {
    /// `auto` picks tty on a terminal, plain otherwise.
    pub fn parse(s: &str, quiet: bool) -> Option<Mode> {
        if quiet {
            return Some(Mode::Quiet);
        }
        match s {
            "auto" => Some(if std::io::stderr().is_terminal() {
                Mode::Tty
            } else {
                Mode::Plain
            }),
            "plain" => Some(Mode::Plain),
            "tty" => Some(Mode::Tty),
            "json" | "rawjson" => Some(Mode::Json),
            "quiet" => Some(Mode::Quiet),
            _ => None,
        }
    }
}

struct StepState {
    name: String,
    started: Instant,
    partial: Vec<u8>,
}

/// Renders events to stderr.
pub struct Printer {
    mode: Mode,
    steps: Mutex<HashMap<usize, StepState>>,
    start: Instant,
}

impl Printer {
    /// A printer in `mode`.
    pub fn new(mode: Mode) -> Printer {
        Printer {
            mode,
            steps: Mutex::new(HashMap::new()),
            start: Instant::now(),
        }
    }

    fn line(&self, s: &str) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{s}");
    }
}

impl Reporter for Printer {
    fn event(&self, ev: BuildEvent) {
        if self.mode == Mode::Quiet {
            return;
        }
        if self.mode == Mode::Json {
            let v = match &ev {
                BuildEvent::Started { id, name } => {
                    serde_json::json!({"event": "started", "id": id, "name": name})
                }
                BuildEvent::Cached { id } => serde_json::json!({"event": "cached", "id": id}),
                BuildEvent::Output { id, data } => {
                    serde_json::json!({"event": "output", "id": id, "data": String::from_utf8_lossy(data)})
                }
                BuildEvent::Done { id, secs } => {
                    serde_json::json!({"event": "done", "id": id, "secs": secs})
                }
                BuildEvent::Failed { id, message } => {
                    serde_json::json!({"event": "failed", "id": id, "message": message})
                }
                BuildEvent::Warning { message } => {
                    serde_json::json!({"event": "warning", "message": message})
                }
            };
            self.line(&v.to_string());
            return;
        }
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        let tty = self.mode == Mode::Tty;
        let stamp = |s: &StepState| s.started.elapsed().as_secs_f64();
        match ev {
            BuildEvent::Started { id, name } => {
                if tty {
                    self.line(&format!("\x1b[1m=> {name}\x1b[0m"));
                } else {
                    self.line(&format!("#{id} {name}"));
                }
                steps.insert(
                    id,
                    StepState {
                        name,
                        started: Instant::now(),
                        partial: vec![],
                    },
                );
            }
            BuildEvent::Cached { id } => {
                if tty {
                    let name = steps.get(&id).map(|s| s.name.clone()).unwrap_or_default();
                    self.line(&format!("=> CACHED {name}"));
                } else {
                    self.line(&format!("#{id} CACHED"));
                }
            }
            BuildEvent::Output { id, data } => {
                if let Some(s) = steps.get_mut(&id) {
                    s.partial.extend_from_slice(&data);
                    let t = s.started.elapsed().as_secs_f64();
                    while let Some(pos) = s.partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = s.partial.drain(..=pos).collect();
                        let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                        if tty {
                            self.line(&format!("\x1b[2m   {text}\x1b[0m"));
                        } else {
                            self.line(&format!("#{id} {t:.3} {text}"));
                        }
                    }
                }
            }
            BuildEvent::Done { id, secs } => {
                if let Some(s) = steps.get_mut(&id)
                    && !s.partial.is_empty()
                {
                    let text = String::from_utf8_lossy(&s.partial).into_owned();
                    self.line(&format!("#{id} {:.3} {text}", stamp(s)));
                    s.partial.clear();
                }
                if tty {
                    let name = steps.get(&id).map(|s| s.name.clone()).unwrap_or_default();
                    self.line(&format!("=> DONE {secs:.1}s {name}"));
                } else {
                    self.line(&format!("#{id} DONE {secs:.1}s"));
                }
            }
            BuildEvent::Failed { id, message } => {
                self.line(&format!("#{id} ERROR: {message}"));
            }
            BuildEvent::Warning { message } => {
                self.line(&format!("WARNING: {message}"));
            }
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        if matches!(self.mode, Mode::Tty) {
            self.line(&format!(
                "=> finished in {:.1}s",
                self.start.elapsed().as_secs_f64()
            ));
        }
    }
}
