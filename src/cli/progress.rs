//! Progress rendering for builds: `plain` (BuildKit-like numbered lines, for CI), `tty` (a live
//! view of running steps with the tail of their output) and `json` (one event per line).

use crate::engine::{BuildEvent, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// TTY mode: the step's live line and the last lines of its output.
    bar: Option<ProgressBar>,
    tail: VecDeque<String>,
}

/// Lines of a running step's output the TTY view keeps under it.
const TAIL_LINES: usize = 6;

/// Renders events to stderr.
pub struct Printer {
    mode: Mode,
    steps: Mutex<HashMap<usize, StepState>>,
    start: Instant,
    multi: Option<MultiProgress>,
}

impl Printer {
    /// A printer in `mode`.
    pub fn new(mode: Mode) -> Printer {
        let multi = (mode == Mode::Tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Printer {
            mode,
            steps: Mutex::new(HashMap::new()),
            start: Instant::now(),
            multi,
        }
    }

    fn line(&self, s: &str) {
        match &self.multi {
            // Lines printed above the live bars, so they are not overwritten.
            Some(m) => {
                let _ = m.println(s);
            }
            None => {
                let mut e = std::io::stderr().lock();
                let _ = writeln!(e, "{s}");
            }
        }
    }

    fn spinner(&self, name: &str) -> Option<ProgressBar> {
        let m = self.multi.as_ref()?;
        let style =
            ProgressStyle::with_template("{spinner:.blue} {prefix:.bold} {elapsed:>4}\n{msg:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let pb = m.add(ProgressBar::new_spinner().with_style(style));
        pb.set_prefix(name.to_string());
        pb.enable_steady_tick(Duration::from_millis(100));
        Some(pb)
    }

    fn finish(&self, s: &mut StepState, status: &str) {
        if let Some(pb) = s.bar.take() {
            pb.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&pb);
            }
        }
        self.line(&format!("=> {status} {}", s.name));
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
                BuildEvent::CacheMiss { id, reason } => {
                    serde_json::json!({"event": "cache miss", "id": id, "reason": reason})
                }
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
        match ev {
            BuildEvent::Started { id, name } => {
                if !tty {
                    self.line(&format!("#{id} {name}"));
                }
                let bar = self.spinner(&name);
                steps.insert(
                    id,
                    StepState {
                        name,
                        started: Instant::now(),
                        partial: vec![],
                        bar,
                        tail: VecDeque::new(),
                    },
                );
            }
            BuildEvent::Cached { id } => {
                if tty {
                    if let Some(mut s) = steps.remove(&id) {
                        self.finish(&mut s, "CACHED");
                    }
                } else {
                    self.line(&format!("#{id} CACHED"));
                }
            }
            BuildEvent::CacheMiss { id, reason } => {
                if tty {
                    let name = steps.get(&id).map(|s| s.name.clone()).unwrap_or_default();
                    self.line(&format!("=> cache miss {name}: {reason}"));
                } else {
                    self.line(&format!("#{id} cache miss: {reason}"));
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
                            if s.tail.len() == TAIL_LINES {
                                s.tail.pop_front();
                            }
                            s.tail.push_back(text);
                        } else {
                            self.line(&format!("#{id} {t:.3} {text}"));
                        }
                    }
                    if let Some(pb) = &s.bar {
                        let lines: Vec<&str> = s.tail.iter().map(|l| l.as_str()).collect();
                        pb.set_message(lines.join("\n"));
                    }
                }
            }
            BuildEvent::Done { id, secs } => {
                if let Some(s) = steps.get_mut(&id)
                    && !s.partial.is_empty()
                    && !tty
                {
                    let text = String::from_utf8_lossy(&s.partial).into_owned();
                    let t = s.started.elapsed().as_secs_f64();
                    self.line(&format!("#{id} {t:.3} {text}"));
                    s.partial.clear();
                }
                if tty {
                    if let Some(mut s) = steps.remove(&id) {
                        self.finish(&mut s, &format!("DONE {secs:.1}s"));
                    }
                } else {
                    self.line(&format!("#{id} DONE {secs:.1}s"));
                }
            }
            BuildEvent::Failed { id, message } => {
                if tty {
                    if let Some(mut s) = steps.remove(&id) {
                        self.finish(&mut s, "ERROR");
                        for l in &s.tail {
                            self.line(&format!("   {l}"));
                        }
                    }
                    self.line(&format!("ERROR: {message}"));
                } else {
                    self.line(&format!("#{id} ERROR: {message}"));
                }
            }
            BuildEvent::Warning { message } => {
                self.line(&format!("WARNING: {message}"));
            }
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
            self.line(&format!(
                "=> finished in {:.1}s",
                self.start.elapsed().as_secs_f64()
            ));
        }
    }
}
