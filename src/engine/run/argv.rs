//! RUN's argv: shell form, exec form, and heredocs (as the script, as a shebang file run by
//! the shell, or read by the shell after the command line).

use crate::engine::stage::heredoc_name;
use crate::parser::{Command, Heredoc};

/// argv for a RUN and, for a shebang heredoc, the script file to provide.
pub(crate) fn run_argv(
    shell: &[String],
    cmd: &Command,
    heredocs: &[Heredoc],
) -> (Vec<String>, Option<(String, String)>) {
    match cmd {
        Command::Exec(v) => (v.clone(), None),
        Command::Shell(s) if heredocs.is_empty() => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            (v, None)
        }
        Command::Shell(s) => {
            let only = heredocs.len() == 1
                && heredoc_name(s.trim()).is_some_and(|n| n == heredocs[0].name);
            if only {
                let h = &heredocs[0];
                if h.content.starts_with("#!") {
                    // BuildKit mounts the script and still runs it through the shell
                    // (`/bin/sh -c /dev/pipes/EOT`), which the script sees (SHLVL=2).
                    let path = format!("/dev/pipes/{}", h.name);
                    let mut v = shell.to_vec();
                    v.push(path.clone());
                    return (v, Some((path, h.content.clone())));
                }
                let mut v = shell.to_vec();
                v.push(h.content.clone());
                return (v, None);
            }
            // The shell reads the heredocs itself: the line, then each body and terminator.
            let mut script = s.clone();
            for h in heredocs {
                script.push('\n');
                script.push_str(&h.content);
                if !h.content.ends_with('\n') && !h.content.is_empty() {
                    script.push('\n');
                }
                script.push_str(&h.name);
            }
            let mut v = shell.to_vec();
            v.push(script);
            (v, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into()]
    }

    fn hd(name: &str, content: &str) -> Heredoc {
        Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
        }
    }

    #[test]
    fn single_heredoc_is_the_script() {
        let (argv, file) = run_argv(
            &sh(),
            &Command::Shell("<<EOT".into()),
            &[hd("EOT", "set -e\necho hi\n")],
        );
        assert_eq!(argv, vec!["/bin/sh", "-c", "set -e\necho hi\n"]);
        assert!(file.is_none());
    }

    #[test]
    fn shebang_heredoc_runs_as_a_file() {
        let (argv, file) = run_argv(
            &sh(),
            &Command::Shell("<<EOF".into()),
            &[hd("EOF", "#!/usr/bin/env python3\nprint(1)\n")],
        );
        assert_eq!(argv, vec!["/bin/sh", "-c", "/dev/pipes/EOF"]);
        assert_eq!(file.unwrap().1, "#!/usr/bin/env python3\nprint(1)\n");
    }

    #[test]
    fn heredocs_with_a_command_go_to_the_shell() {
        let (argv, _) = run_argv(
            &sh(),
            &Command::Shell("<<ONE cat /dev/stdin > /e && <<TWO cat >> /e".into()),
            &[hd("ONE", "first\n"), hd("TWO", "second\n")],
        );
        assert_eq!(
            argv[2],
            "<<ONE cat /dev/stdin > /e && <<TWO cat >> /e\nfirst\nONE\nsecond\nTWO"
        );
    }
}
