//! `login` and `logout`: credentials in Docker's `config.json`, checked against the registry
//! first.

use super::pull_push::client;
use super::{GlobalArgs, RegistryTimeoutArgs};
use crate::Error;
use crate::registry::auth;
use clap::Args;
use std::io::Read;
use std::process::ExitCode;

/// `hoist login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub timeouts: RegistryTimeoutArgs,
    pub server: String,
}

/// `hoist logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    pub server: String,
}

fn server_name(s: &str) -> String {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    if auth::is_docker_hub(host) {
        "docker.io".into()
    } else {
        host.to_string()
    }
}

/// `hoist login`.
pub fn login(g: &GlobalArgs, a: LoginArgs) -> crate::Result<ExitCode> {
    let server = server_name(&a.server);
    let username = match &a.username {
        Some(u) => u.clone(),
        None => {
            err!("Username: ");
            let mut u = String::new();
            std::io::stdin().read_line(&mut u).map_err(|e| Error::Io {
                path: "stdin".into(),
                source: e,
            })?;
            u.trim().to_string()
        }
    };
    let password = if a.password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .read_to_string(&mut p)
            .map_err(|e| Error::Io {
                path: "stdin".into(),
                source: e,
            })?;
        p.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        errln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        err!("Password: ");
        let mut p = String::new();
        std::io::stdin().read_line(&mut p).map_err(|e| Error::Io {
            path: "stdin".into(),
            source: e,
        })?;
        p.trim_end_matches(['\n', '\r']).to_string()
    };
    if username.is_empty() || password.is_empty() {
        return Err(Error::Usage(
            "login needs a username and a password (use -u and --password-stdin)".into(),
        ));
    }
    let c = client(g, &a.timeouts, true)?;
    c.login(&server, &username, &password)?;
    let mut cfg = auth::DockerConfig::load(&auth::config_dir(None))?;
    cfg.store(&server, &username, &password)?;
    outln!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

/// `hoist logout`.
pub fn logout(_g: &GlobalArgs, a: LogoutArgs) -> crate::Result<ExitCode> {
    let server = server_name(&a.server);
    let mut cfg = auth::DockerConfig::load(&auth::config_dir(None))?;
    if cfg.erase(&server)? {
        outln!("Removing login credentials for {server}");
    } else {
        outln!("Not logged in to {server}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert_eq!(server_name("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_name("localhost:5000"), "localhost:5000");
    }
}
