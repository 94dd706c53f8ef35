//! BuildKit-style error rendering: `file:line`, the Dockerfile lines around the span, the message.
use super::Span;

/// Renders `file:line`, the lines around, and the message.
pub fn render(file: &str, source: &str, span: Span, message: &str) -> String {
    let mut out = format!("{file}:{}\n--------------------\n", span.start);
    let lines: Vec<&str> = source.lines().collect();
    let from = span.start.saturating_sub(2).max(1);
    let to = (span.end + 1).min(lines.len());
    for n in from..=to {
        let mark = if n >= span.start && n <= span.end {
            ">>>"
        } else {
            "   "
        };
        out.push_str(&format!(
            " {n:>3} | {mark} {}\n",
            lines.get(n - 1).unwrap_or(&"")
        ));
    }
    out.push_str(&format!(
        "--------------------\n{file}:{}: {message}",
        span.start
    ));
    out
}
