//! Entitlements (`hoist build --allow network.host|security.insecure`): what a RUN may ask
//! for only when the user allows it, as BuildKit's solver checks each exec op. BuildKit
//! refuses `RUN --network=host` without `network.host` ("network.host is not allowed") and
//! `RUN --security=insecure` without `security.insecure`; an explicit `hoist build --network
//! host` grants `network.host` itself, as buildx adds it for that flag.

use crate::engine::{EngineError, Result};
use crate::executor::Network;

/// The entitlements a build was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entitlements {
    /// `network.host`: `RUN --network=host`.
    pub network_host: bool,
    /// `security.insecure`: `RUN --security=insecure`.
    pub security_insecure: bool,
}

impl Entitlements {
    /// Adds one `--allow` value (comma-separated lists too, as buildx splits them).
    pub fn allow(&mut self, value: &str) -> std::result::Result<(), String> {
        for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            match v {
                "network.host" => self.network_host = true,
                "security.insecure" => self.security_insecure = true,
                "device" => {
                    return Err(format!(
                        "--allow {v}: the device entitlement (CDI devices) is not supported yet"
                    ));
                }
                _ => {
                    return Err(format!(
                        "--allow {v:?}: expected network.host or security.insecure"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A RUN's network and security mode, checked against `granted`: `(network, insecure)`.
/// `default_net` applies when the RUN names no network.
pub(super) fn check(
    granted: Entitlements,
    network: Option<&str>,
    security: Option<&str>,
    default_net: Network,
) -> Result<(Network, bool)> {
    let net = match network {
        Some("none") => Network::None,
        Some("default") => Network::Host,
        Some("host") if granted.network_host => Network::Host,
        Some("host") => {
            return Err(EngineError::NotEntitled {
                what: "RUN --network=host",
                entitlement: "network.host",
            });
        }
        Some(other) => {
            return Err(EngineError::BadValue {
                what: "RUN --network",
                value: other.into(),
                reason: "expected default, none or host".into(),
            });
        }
        None => default_net,
    };
    let insecure = match security {
        None | Some("sandbox") => false,
        Some("insecure") if granted.security_insecure => true,
        Some("insecure") => {
            return Err(EngineError::NotEntitled {
                what: "RUN --security=insecure",
                entitlement: "security.insecure",
            });
        }
        Some(other) => {
            return Err(EngineError::BadValue {
                what: "RUN --security",
                value: other.into(),
                reason: "expected sandbox or insecure".into(),
            });
        }
    };
    Ok((net, insecure))
}

/// Checks every RUN of the stages `graph` builds before anything runs, as BuildKit checks its
/// whole LLB when it loads it: the first refused one, with its Dockerfile line.
pub fn check_graph(
    granted: Entitlements,
    graph: &crate::graph::BuildGraph,
) -> std::result::Result<(), (usize, EngineError)> {
    for &i in &graph.order {
        let Some(stage) = graph.stages.get(i) else {
            continue;
        };
        for step in &stage.steps {
            if let crate::parser::Instruction::Run {
                network, security, ..
            } = &step.node.instruction
            {
                check(
                    granted,
                    network.as_deref(),
                    security.as_deref(),
                    Network::Host,
                )
                .map_err(|e| (step.node.span.start, e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_unless_allowed() {
        let none = Entitlements::default();
        let e = check(none, Some("host"), None, Network::Host).unwrap_err();
        assert!(e.to_string().contains("--allow network.host"), "{e}");
        let e = check(none, None, Some("insecure"), Network::Host).unwrap_err();
        assert!(e.to_string().contains("--allow security.insecure"), "{e}");
        let mut all = Entitlements::default();
        all.allow("network.host,security.insecure").unwrap();
        assert_eq!(
            check(all, Some("host"), Some("insecure"), Network::None).unwrap(),
            (Network::Host, true)
        );
        assert_eq!(
            check(none, None, Some("sandbox"), Network::None).unwrap(),
            (Network::None, false)
        );
        assert!(check(all, Some("bridge"), None, Network::Host).is_err());
        assert!(check(all, None, Some("weird"), Network::Host).is_err());
        assert!(Entitlements::default().allow("device").is_err());
        assert!(Entitlements::default().allow("net").is_err());
    }

    #[test]
    fn the_whole_graph_is_checked_first() {
        let text = "FROM busybox\nRUN echo one\nRUN --security=insecure id\n";
        let df = crate::parser::parse(text).unwrap();
        let g = crate::graph::build(&df, &Default::default()).unwrap();
        let (line, e) = check_graph(Entitlements::default(), &g).unwrap_err();
        assert_eq!(line, 3);
        assert!(matches!(e, EngineError::NotEntitled { .. }));
        let mut ok = Entitlements::default();
        ok.allow("security.insecure").unwrap();
        assert!(check_graph(ok, &g).is_ok());
    }
}
