//! COPY and ADD as a layer step: expanded words, the source (context, stage or image), the
//! cache key, and on a miss the files written by `copy`.

use super::heredoc::{expand_heredoc, heredoc_name};
use super::layer_step::layer_step_with;
use super::{Named, RootView, State, load_image, materialize, named};
use crate::cache::StepKey;
use crate::copy::{self, CopyRequest, CopySource};
use crate::engine::{Ctx, EngineError, Result, StageResult, config};
use crate::graph::{Source, Step};
use crate::parser::expand;
use crate::parser::mounts::MountSpec;
use crate::parser::{CopyArgs, Instruction};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The context paths BuildKit's frontend would ask the client for: the sources of every
/// COPY/ADD without `--from` and every RUN bind or tmpfs mount without `from` (BuildKit adds
/// those too, a tmpfs as the whole context), in the stages this build runs.
fn sent_paths(ctx: &Ctx) -> Result<copy::SentPaths> {
    let graph = &ctx.req.graph;
    let mut paths: Vec<String> = Vec::new();
    for step in graph
        .order
        .iter()
        .filter_map(|&i| graph.stages.get(i))
        .flat_map(|s| &s.steps)
    {
        match &step.node.instruction {
            Instruction::Copy(a) | Instruction::Add(a) if step.from.is_none() => {
                paths.extend(
                    a.sources
                        .iter()
                        .filter(|s| {
                            !a.heredocs
                                .iter()
                                .any(|h| heredoc_name(s).is_some_and(|n| n == h.name))
                        })
                        .filter(|s| !s.starts_with("http://") && !s.starts_with("https://"))
                        .cloned(),
                );
            }
            Instruction::Run { mounts, .. } => {
                for m in mounts {
                    match crate::parser::mounts::parse_mount(m) {
                        Ok(MountSpec::Bind {
                            source, from: None, ..
                        }) => paths.push(source.unwrap_or_default()),
                        Ok(MountSpec::Tmpfs { .. }) => paths.push(String::new()),
                        Ok(_) => {}
                        // A mount word with a variable: its path is not known yet.
                        Err(_) => paths.push("$".into()),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(copy::SentPaths::new(paths).map_err(copy::CopyError::from)?)
}

/// COPY (`add` false) or ADD `a` of `step`, `--from` sources taken from `deps`.
#[allow(clippy::too_many_arguments)]
pub(super) fn copy_step(
    ctx: &Ctx,
    st: &mut State,
    step: &Step,
    a: &CopyArgs,
    add: bool,
    deps: &HashMap<usize, Arc<StageResult>>,
    name: &str,
    no_cache: bool,
) -> Result<()> {
    let escape = ctx.req.graph.escape;
    let ex = |w: &str| -> Result<String> { Ok(expand::expand_word(w, &st.lookup(), escape)?) };
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for s in &a.sources {
        if let Some(h) = a
            .heredocs
            .iter()
            .find(|h| heredoc_name(s).is_some_and(|n| n == h.name))
        {
            let content = if h.expand {
                expand_heredoc(&h.content, &st.lookup(), escape)
            } else {
                h.content.clone()
            };
            heredocs.push((s.clone(), content));
            sources.push(s.clone());
        } else {
            sources.push(ex(s)?);
        }
    }
    let dest_raw = ex(&a.dest)?;
    let wd = st
        .config
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".into());
    let dest = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        let trailing = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.is_empty();
        let mut d = config::clean_path(&format!("{wd}/{dest_raw}"));
        if trailing && !d.ends_with('/') {
            d.push('/');
        }
        d
    };
    let chmod = a.chmod.as_deref().map(ex).transpose()?;
    let chown_spec = a.chown.as_deref().map(ex).transpose()?;
    let mut exclude = Vec::new();
    for e in &a.exclude {
        exclude.push(ex(e)?);
    }
    let checksum = a.checksum.as_deref().map(ex).transpose()?;

    // The source: the context (the main one, or a named directory), a stage's result, or an
    // image.
    let mut dir: (&std::path::Path, &crate::parser::dockerignore::Matcher) =
        (&ctx.req.context, &ctx.req.ignore);
    let from_layers: Option<(Vec<PathBuf>, String)> = match &step.from {
        None => None,
        Some(Source::Stage(i)) => {
            let r = deps.get(i).ok_or(EngineError::Cancelled)?;
            Some((
                r.layers.iter().map(|l| l.snapshot.clone()).collect(),
                r.key.to_string(),
            ))
        }
        Some(Source::Image(reference)) => {
            // As in BuildKit, an image named by `--from` is an implicit stage of its own,
            // without `--platform`: it is loaded for the build's platform.
            let b = load_image(ctx, &ex(reference)?, &ctx.req.platform)?;
            Some((
                b.layers.iter().map(|l| l.snapshot.clone()).collect(),
                b.manifest_digest.to_string(),
            ))
        }
        Some(Source::Scratch) => Some((vec![], "scratch".into())),
        // A named directory is read exactly as the main context, so its content is the key.
        Some(Source::Context(k)) => match named(ctx, k, &ctx.req.platform)? {
            Named::Dir { root, ignore } => {
                dir = (root, ignore);
                None
            }
            Named::Image(b) => Some((
                b.layers.iter().map(|l| l.snapshot.clone()).collect(),
                b.manifest_digest.to_string(),
            )),
        },
    };

    let mut req = CopyRequest {
        sources,
        dest: dest.clone(),
        chown: None,
        chmod,
        parents: a.parents,
        exclude,
        add,
        unpack: a.unpack,
        checksum,
        keep_git_dir: a.keep_git_dir,
        heredocs,
        source_date_epoch: ctx.req.source_date_epoch,
        // BuildKit's copy reads the same state it writes to (`FROM img` + `--from=img`, or a
        // stage built on the source stage with no file step since): one input, whose content
        // it never hashes, so --parents sources go unchecked.
        unchecked_parents: a.parents
            && from_layers
                .as_ref()
                .is_some_and(|(lowers, _)| *lowers == st.lowers()),
        sent: from_layers
            .is_none()
            .then(|| sent_paths(ctx))
            .transpose()?
            .map(Arc::new),
    };
    // The key needs no mounted view: the context's content key, or the source stage/image's
    // identity. Views are opened (and --chown names resolved) only when the step runs.
    // The hashed lines come along (unhashed) so a miss can name the files that changed.
    let (content, files) = match &from_layers {
        Some((_, k)) => (format!("from:{k}"), None),
        None => {
            let src = CopySource::Context {
                root: dir.0,
                ignore: dir.1,
            };
            let (digest, lines) = copy::content_key_lines(&src, &req, &ctx.hashes)?;
            record_remote_sources(ctx, &lines);
            (digest.to_string(), Some(lines))
        }
    };
    let kw = if add { "ADD" } else { "COPY" };
    let flags = format!(
        "chown={:?} chmod={:?} parents={} exclude={:?} unpack={:?} checksum={:?} keepgit={} link={}",
        chown_spec,
        req.chmod,
        req.parents,
        req.exclude,
        req.unpack,
        req.checksum,
        req.keep_git_dir,
        a.link
    );
    let srcs = req.sources.join("\u{0}");
    let mut created_by = String::from(if add { "ADD" } else { "COPY" });
    if a.parents {
        created_by.push_str(" --parents");
    }
    if let Some(c) = &chown_spec {
        created_by.push_str(&format!(" --chown={c}"));
    }
    if let Some(c) = &req.chmod {
        created_by.push_str(&format!(" --chmod={c}"));
    }
    for s in req.sources.iter().filter(|s| heredoc_name(s).is_none()) {
        created_by.push(' ');
        created_by.push_str(s);
    }
    for (name, _) in &req.heredocs {
        created_by.push_str(&format!(" <<{}", heredoc_name(name).unwrap_or_default()));
    }
    created_by.push_str(&format!(" {dest_raw} # buildkit"));
    // `--link` (BuildKit applies it when there is no --chmod): the files are copied onto an
    // empty tree, so the layer holds fresh parent dirs and never looks at the image below, and
    // its cache entry does not depend on the layers below either (a changed base still reuses
    // it). A --chown name cannot be looked up there (below).
    let link = a.link && req.chmod.is_none();
    // BuildKit looks a --chown name up in the filesystem the copy is based on; a --link copy
    // (based on an empty tree) or the first file step of a FROM scratch stage has none.
    if let Some(spec) = chown_spec
        .as_deref()
        .filter(|s| crate::executor::user::names_an_id(s))
        && (link || st.layers.is_empty())
    {
        return Err(EngineError::NameWithoutFilesystem {
            what: "--chown",
            spec: spec.to_string(),
            why: if link {
                "a --link copy is made on an empty tree"
            } else {
                "the stage is still empty (FROM scratch, nothing added yet)"
            },
        });
    }
    let independent = link;
    let chain_key = st.key.clone();
    if independent {
        st.key = StepKey::new("link").root();
    }
    let mut key = StepKey::new(kw)
        .part("sources", srcs)
        .part("dest", dest.as_str())
        .part("flags", flags)
        .part("content", content);
    if let Some(lines) = files {
        key = key.with_files(lines);
    }
    let r = layer_step_with(ctx, st, name, no_cache, key, created_by, |st, out, _| {
        // --chown names resolve in the destination image's passwd/group.
        let image_view = RootView::open(ctx, &st.lowers())?;
        let empty_dest = if link {
            Some(ctx.store.tmp_dir()?)
        } else {
            None
        };
        let dest_root = empty_dest
            .as_ref()
            .map_or_else(|| image_view.path(), |t| t.path());
        if let Some(spec) = &chown_spec {
            req.chown = Some(crate::executor::user::resolve_chown(
                image_view.path(),
                spec,
            )?);
        }
        let src_view = match &from_layers {
            Some((lowers, _)) => {
                match &step.from {
                    Some(Source::Stage(i)) => {
                        if let Some(r) = deps.get(i) {
                            materialize(ctx, &r.layers)?;
                        }
                    }
                    Some(Source::Image(_) | Source::Scratch | Source::Context(_)) | None => {}
                }
                Some(RootView::open(ctx, lowers)?)
            }
            None => None,
        };
        let src = match &src_view {
            Some(v) => CopySource::Rootfs(v.path()),
            None => CopySource::Context {
                root: dir.0,
                ignore: dir.1,
            },
        };
        Ok(Some(copy::apply_deferred(&src, &req, dest_root, out)?))
    });
    if independent {
        // Later steps still build on everything below.
        st.key = StepKey::new("link")
            .part("layer", st.key.to_string())
            .digest(&chain_key);
    }
    r
}

/// ADD's git and http sources, from the key lines that name them (`g /dest URL COMMIT`,
/// `u /dest URL sha256:HEX`), for provenance.
fn record_remote_sources(ctx: &Ctx, lines: &[String]) {
    for l in lines {
        let git = l.starts_with("g /");
        if !(git || l.starts_with("u /")) {
            continue;
        }
        let mut it = l.rsplitn(3, ' ');
        let (Some(digest), Some(url)) = (it.next(), it.next()) else {
            continue;
        };
        let (algorithm, hex) = match digest.split_once(':') {
            Some((a, h)) => (a, h),
            // A git commit id: sha1, or sha256 for a sha256 repository (as BuildKit).
            None if digest.len() == 64 => ("sha256", digest),
            None => ("sha1", digest),
        };
        ctx.trace.source(crate::engine::trace::SourceRecord {
            uri: crate::registry::auth::redact_credentials(url),
            digest: (algorithm.to_string(), hex.to_string()),
        });
    }
}
