//! `hoist build` flags for the RUN sandbox, entitlements, annotations and `--call`, kept out of
//! `build.rs`: `--add-host`, `--ulimit`, `--shm-size` (applied to every RUN, as BuildKit's
//! frontend options `add-hosts`, `ulimit`, `shm-size`), `--allow`, `--annotation`,
//! `--call outline|targets` (what the Dockerfile offers, printed instead of a build), and
//! docker's `--rm`/`--force-rm`, which BuildKit builds accept and need not act on (no
//! intermediate containers are kept).

use crate::build::Annotations;
use crate::build::annotations::Annotation;
use crate::engine::Entitlements;
use crate::executor::SandboxOptions;
use crate::executor::sandbox::{parse_add_host, parse_size, parse_ulimit};
use crate::graph::outline;
use clap::Args;
use std::collections::BTreeMap;

/// The flags, flattened into `hoist build`'s.
#[derive(Debug, Args, Default)]
pub struct BuildSandboxArgs {
    /// Add a host-to-IP mapping to RUN's /etc/hosts: HOST:IP (repeatable)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Ulimit for RUN: TYPE=SOFT[:HARD], e.g. nofile=1024:2048 (repeatable)
    #[arg(long = "ulimit", value_name = "TYPE=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Size of RUN's /dev/shm, e.g. 128m (default 64m)
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Allow an extra privileged entitlement: network.host, security.insecure (repeatable)
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Add an OCI annotation: [TYPE[,TYPE][[PLATFORM]]:]KEY=VALUE, TYPE = manifest (default),
    /// index, manifest-descriptor, index-descriptor (repeatable)
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    pub annotation: Vec<String>,
    /// What to do with the Dockerfile: build (default), outline or targets (print the build
    /// args, secrets and SSH of the target, or the stages), with `,format=json` for JSON
    #[arg(long = "call", value_name = "METHOD[,format=json]")]
    pub call: Option<String>,
    /// Remove intermediate containers (always the case: accepted as docker build with
    /// BuildKit accepts it)
    #[arg(long = "rm")]
    pub rm: bool,
    /// Always remove intermediate containers (always the case, as --rm)
    #[arg(long = "force-rm")]
    pub force_rm: bool,
}

/// `--call`'s method.
enum Method {
    Build,
    Outline,
    Targets,
}

impl BuildSandboxArgs {
    /// The sandbox settings every RUN gets.
    pub fn sandbox(&self) -> crate::Result<SandboxOptions> {
        let usage = |e: crate::executor::sandbox::OptionError| crate::Error::Usage(e.to_string());
        Ok(SandboxOptions {
            extra_hosts: self
                .add_host
                .iter()
                .map(|h| parse_add_host(h).map_err(usage))
                .collect::<crate::Result<_>>()?,
            ulimits: self
                .ulimit
                .iter()
                .map(|u| parse_ulimit(u).map_err(usage))
                .collect::<crate::Result<_>>()?,
            shm_size: self
                .shm_size
                .as_deref()
                .map(|s| parse_size("--shm-size", s).map_err(usage))
                .transpose()?,
            stdio: Default::default(),
        })
    }

    /// The granted entitlements; `--network host` on the command line grants `network.host`
    /// too (buildx adds it for that flag).
    pub fn entitlements(&self, network_flag: Option<&str>) -> crate::Result<Entitlements> {
        let mut e = Entitlements::default();
        for a in &self.allow {
            e.allow(a).map_err(crate::Error::Usage)?;
        }
        if network_flag == Some("host") {
            e.network_host = true;
        }
        Ok(e)
    }

    /// The `--annotation`s.
    pub fn annotations(&self) -> crate::Result<Annotations> {
        Ok(Annotations(
            self.annotation
                .iter()
                .map(|a| Annotation::parse(a).map_err(|e| crate::Error::Usage(e.to_string())))
                .collect::<crate::Result<_>>()?,
        ))
    }

    fn method(&self) -> crate::Result<(Method, bool)> {
        let Some(c) = &self.call else {
            return Ok((Method::Build, false));
        };
        let mut parts = c.split(',').map(str::trim);
        let method = match parts.next().unwrap_or_default() {
            "build" | "" => Method::Build,
            "outline" => Method::Outline,
            "targets" => Method::Targets,
            // The build checks: `cli::check` answers them (`--call check` = `--check`).
            "check" => Method::Build,
            m => {
                return Err(crate::Error::Usage(format!(
                    "--call {m:?}: expected build, check, outline or targets"
                )));
            }
        };
        let mut json = false;
        for p in parts {
            match p {
                "format=json" => json = true,
                "format=text" | "" => {}
                other => {
                    return Err(crate::Error::Usage(format!(
                        "--call {c:?}: unknown option {other:?} (format=json or format=text)"
                    )));
                }
            }
        }
        Ok((method, json))
    }

    /// With `--call outline|targets`, the text to print instead of building.
    pub fn call_output(
        &self,
        df: &crate::parser::Dockerfile,
        text: &str,
        target: Option<&str>,
        build_args: &BTreeMap<String, String>,
    ) -> crate::Result<Option<String>> {
        let (method, json) = self.method()?;
        Ok(match method {
            Method::Build => None,
            Method::Outline => {
                let o = outline::outline(df, text, target, build_args)
                    .map_err(|e| crate::Error::Usage(format!("--call outline: {e}")))?;
                Some(if json {
                    format!("{}\n", outline::to_json(&o))
                } else {
                    outline::outline_text(&o)
                })
            }
            Method::Targets => {
                let t = outline::targets(df, text);
                Some(if json {
                    format!("{}\n", outline::to_json(&t))
                } else {
                    outline::targets_text(&t)
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_into_plan_parts() {
        let a = BuildSandboxArgs {
            add_host: vec!["db:10.0.0.1".into()],
            ulimit: vec!["nofile=10:20".into()],
            shm_size: Some("1m".into()),
            allow: vec!["security.insecure".into()],
            annotation: vec!["k=v".into()],
            call: Some("targets,format=json".into()),
            ..Default::default()
        };
        let s = a.sandbox().unwrap();
        assert_eq!(s.extra_hosts.len(), 1);
        assert_eq!(s.shm_size, Some(1 << 20));
        let e = a.entitlements(None).unwrap();
        assert!(e.security_insecure && !e.network_host);
        assert!(a.entitlements(Some("host")).unwrap().network_host);
        assert_eq!(a.annotations().unwrap().0.len(), 1);
        assert!(matches!(a.method().unwrap(), (Method::Targets, true)));
        let bad = BuildSandboxArgs {
            call: Some("lint".into()),
            ..Default::default()
        };
        assert!(bad.method().is_err());
    }
}
