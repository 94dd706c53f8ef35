//! The environment a run's process starts with, for every backend.

/// The spec's environment, plus `PATH` (Docker's default) and `HOME` (from passwd, else `/`)
/// when unset.
pub fn final_env(env: &[String], home: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = env.to_vec();
    let has = |k: &str| {
        env.iter()
            .any(|kv| kv.split_once('=').map_or(kv.as_str(), |(a, _)| a) == k)
    };
    if !has("PATH") {
        out.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if !has("HOME") {
        out.push(format!("HOME={}", home.unwrap_or("/")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_defaults() {
        let e = final_env(&["HOME=/x".into()], Some("/root"));
        assert_eq!(
            e,
            [
                "HOME=/x",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ]
        );
        let e = final_env(&["PATH=/bin".into()], Some("/root"));
        assert_eq!(e, ["PATH=/bin", "HOME=/root"]);
        assert_eq!(final_env(&["PATH=/bin".into()], None)[1], "HOME=/");
    }
}
