//! `hoist build --dry-run` output. (Stub until the parser/graph work lands.)
use super::BuildGraph;

/// Renders the plan.
pub fn render(g: &BuildGraph) -> String {
    let mut s = String::new();
    for &i in &g.order {
        let st = &g.stages[i];
        s.push_str(&format!(
            "stage {} {}\n",
            i,
            st.name.as_deref().unwrap_or("")
        ));
        for step in &st.steps {
            s.push_str(&format!("  {}\n", step.node.original));
        }
    }
    s
}
