//! npm packages: `package-lock.json` (lockfile v1's nested `dependencies`, v2/v3's flat
//! `packages` keyed by `node_modules/…` path) and installed `node_modules/**/package.json`.

use super::Found;
use serde_json::Value;

/// The license of a package.json / lock entry: a string, or the old `{ "type": … }` object,
/// or the older `licenses` array (joined with OR, as npm documented it).
fn license(v: &Value) -> Option<String> {
    match v.get("license") {
        Some(Value::String(s)) => return Some(s.clone()),
        Some(Value::Object(o)) => {
            if let Some(Value::String(t)) = o.get("type") {
                return Some(t.clone());
            }
        }
        _ => {}
    }
    let list: Vec<String> = v
        .get("licenses")?
        .as_array()?
        .iter()
        .filter_map(|l| match l {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("type")?.as_str().map(str::to_string),
            _ => None,
        })
        .collect();
    (!list.is_empty()).then(|| list.join(" OR "))
}

fn supplier(v: &Value) -> Option<String> {
    match v.get("author")? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("name")?.as_str().map(str::to_string),
        _ => None,
    }
}

fn dep_names(v: &Value, keys: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = keys
        .iter()
        .filter_map(|k| v.get(*k)?.as_object())
        .flat_map(|o| o.keys().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The package an installed `package.json` describes (`None` without name and version).
pub fn parse_package_json(text: &str) -> Option<Found> {
    let v: Value = serde_json::from_str(text).ok()?;
    Some(Found {
        name: v.get("name")?.as_str()?.to_string(),
        version: v.get("version")?.as_str()?.to_string(),
        license: license(&v),
        supplier: supplier(&v),
        depends: dep_names(&v, &["dependencies", "optionalDependencies"]),
        ..Found::default()
    })
}

/// The packages a `package-lock.json` pins (the root project itself left out).
pub fn parse_lock(text: &str) -> Result<Vec<Found>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    if let Some(pkgs) = v.get("packages").and_then(Value::as_object) {
        for (path, p) in pkgs {
            // "" is the project; links point at workspace folders listed on their own.
            if path.is_empty() || p.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let Some(idx) = path.rfind("node_modules/") else {
                continue;
            };
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&path[idx + "node_modules/".len()..]);
            let Some(version) = p.get("version").and_then(Value::as_str) else {
                continue;
            };
            out.push(Found {
                name: name.to_string(),
                version: version.to_string(),
                license: license(p),
                depends: dep_names(p, &["dependencies", "optionalDependencies"]),
                ..Found::default()
            });
        }
    } else if let Some(deps) = v.get("dependencies").and_then(Value::as_object) {
        v1(deps, &mut out, 0);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Lockfile v1: nested `dependencies` objects, `requires` naming what each one needs.
fn v1(deps: &serde_json::Map<String, Value>, out: &mut Vec<Found>, depth: usize) {
    // Nesting follows node_modules depth; bounded against hostile input.
    if depth > 64 {
        return;
    }
    for (name, d) in deps {
        if let Some(version) = d.get("version").and_then(Value::as_str) {
            out.push(Found {
                name: name.clone(),
                version: version.to_string(),
                depends: dep_names(d, &["requires"]),
                ..Found::default()
            });
        }
        if let Some(nested) = d.get("dependencies").and_then(Value::as_object) {
            v1(nested, out, depth + 1);
        }
    }
}

/// Whether `path` is an installed package's manifest: `…/node_modules/NAME/package.json` or
/// `…/node_modules/@SCOPE/NAME/package.json`.
pub fn is_installed_manifest(path: &str) -> bool {
    let Some(rest) = path.strip_suffix("/package.json") else {
        return false;
    };
    let parts: Vec<&str> = rest.rsplit('/').take(3).collect();
    match parts.as_slice() {
        [_, "node_modules", ..] => true,
        [_, scope, "node_modules"] => scope.starts_with('@'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sbom::fixture;

    #[test]
    fn lock_v3_lists_packages_by_path() {
        let p = parse_lock(&fixture("package-lock.json")).unwrap();
        let got: Vec<(&str, &str, Option<&str>)> = p
            .iter()
            .map(|f| (f.name.as_str(), f.version.as_str(), f.license.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("@types/node", "20.11.5", Some("MIT")),
                ("ms", "2.1.2", Some("MIT")),
                ("ms", "2.1.3", Some("MIT")),
                ("undici-types", "5.26.5", Some("MIT")),
            ]
        );
        assert_eq!(p[0].depends, vec!["undici-types"]);
    }

    #[test]
    fn lock_v1_walks_nested_dependencies() {
        let text = r#"{"lockfileVersion":1,"dependencies":{
            "debug":{"version":"4.3.4","requires":{"ms":"2.1.2"},
              "dependencies":{"ms":{"version":"2.1.2"}}},
            "ms":{"version":"2.1.3"}}}"#;
        let p = parse_lock(text).unwrap();
        let got: Vec<String> = p
            .iter()
            .map(|f| format!("{}@{}", f.name, f.version))
            .collect();
        assert_eq!(got, vec!["debug@4.3.4", "ms@2.1.2", "ms@2.1.3"]);
        assert_eq!(p[0].depends, vec!["ms"]);
    }

    #[test]
    fn installed_manifests_are_recognised_by_path() {
        assert!(is_installed_manifest("/app/node_modules/ms/package.json"));
        assert!(is_installed_manifest(
            "/app/node_modules/@types/node/package.json"
        ));
        assert!(!is_installed_manifest("/app/package.json"));
        assert!(!is_installed_manifest(
            "/app/node_modules/ms/lib/package.json"
        ));
        let f = parse_package_json(r#"{"name":"ms","version":"2.1.3","license":{"type":"MIT"}}"#)
            .unwrap();
        assert_eq!(f.license.as_deref(), Some("MIT"));
    }
}
