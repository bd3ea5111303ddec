//! Several components, routed by path (`--route PATH=COMPONENT`), and their
//! reload.
//!
//! A route's prefix matches a request path equal to it or continuing it
//! with `/`: `/chat` serves `/chat` and `/chat/rooms/a`, not `/chatter`;
//! `/` serves every path. The longest matching prefix wins, then the
//! default route (the positional component, or the bundled echo) unless
//! there is none. Paths are compared as the client sent them, without the
//! query and without percent-decoding, so a route is a way to pick a
//! component, not an access control: the component checks what it serves.
//!
//! Each route holds its component behind an [`ArcSwap`]: a connection takes
//! the current [`Runtime`] when it starts and keeps it to the end, and a
//! reload compiles the file again and swaps in the result for the
//! connections that start after it. Routes naming the same file share one
//! compilation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use arc_swap::ArcSwap;

use crate::runtime::{Base, Runtime};
use crate::shape::InstanceShape;

/// Where a route's component comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// The bundled echo component.
    Bundled,
    /// Bytes given to the builder (not reloadable).
    Bytes(Arc<[u8]>),
    /// A file, read again on every reload.
    File(PathBuf),
}

impl Source {
    fn bytes(&self) -> anyhow::Result<Arc<[u8]>> {
        Ok(match self {
            Source::Bundled => Arc::from(crate::ECHO_COMPONENT),
            Source::Bytes(bytes) => bytes.clone(),
            Source::File(path) => std::fs::read(path)
                .with_context(|| format!("reading component {}", path.display()))?
                .into(),
        })
    }

    /// How log lines and `/metrics` name the component.
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Bundled => "bundled echo".into(),
            Source::Bytes(_) => "component bytes".into(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// One route: a path prefix (`None` for the default route), its source and
/// the component serving it now.
pub(crate) struct Route {
    prefix: Option<String>,
    source: Source,
    current: ArcSwap<Runtime>,
    /// Successful reloads of this route's component.
    generation: AtomicU64,
}

impl Route {
    /// The route's name in logs and metrics: its prefix, or `default`.
    pub(crate) fn name(&self) -> &str {
        self.prefix.as_deref().unwrap_or("default")
    }

    /// The component serving new connections now.
    pub(crate) fn current(&self) -> Arc<Runtime> {
        self.current.load_full()
    }
}

/// The routes of a server: prefixes longest first, then the default.
pub(crate) struct Routes {
    /// Prefixed routes, longest prefix first.
    prefixed: Vec<Arc<Route>>,
    default: Option<Arc<Route>>,
}

/// Normalises a route prefix: it starts with `/`, and a trailing `/` (but
/// the root's) is dropped. Errors name what is wrong.
pub(crate) fn normalise_prefix(prefix: &str) -> Result<String, String> {
    if !prefix.starts_with('/') {
        return Err(format!("a route path starts with '/' (got {prefix:?})"));
    }
    if prefix.contains(['?', '#']) || prefix.chars().any(|c| c.is_ascii_whitespace()) {
        return Err(format!(
            "a route path has no query, fragment or spaces (got {prefix:?})"
        ));
    }
    let trimmed = prefix.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// Whether `prefix` (normalised) serves `path`.
fn serves(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What the instance pool must hold room for: the largest of each count over
/// the components of `sources` ([`InstanceShape`]), reading each once.
pub(crate) fn shape<'a>(
    sources: impl IntoIterator<Item = &'a Source>,
) -> anyhow::Result<InstanceShape> {
    let mut shape = InstanceShape::FLOOR;
    for source in sources {
        let bytes = source.bytes()?;
        let one =
            InstanceShape::of(&bytes).with_context(|| format!("loading {}", source.describe()))?;
        shape = shape.max(one);
    }
    Ok(shape)
}

impl Routes {
    /// Compiles every route's component once per distinct source (on the
    /// calling thread: compilation is CPU work) and builds the table.
    /// `prefixed` holds normalised prefixes; a repeated prefix is an error.
    pub(crate) fn compile(
        base: &Arc<Base>,
        prefixed: Vec<(String, Source)>,
        default: Option<Source>,
    ) -> anyhow::Result<Self> {
        let mut compiled: HashMap<Source, Arc<Runtime>> = HashMap::new();
        let mut build = |prefix: Option<String>, source: Source| -> anyhow::Result<Arc<Route>> {
            let runtime = match compiled.get(&source) {
                Some(runtime) => runtime.clone(),
                None => {
                    let bytes = source.bytes()?;
                    let runtime = Arc::new(
                        Runtime::compile(base.clone(), &bytes)
                            .with_context(|| format!("loading {}", source.describe()))?,
                    );
                    compiled.insert(source.clone(), runtime.clone());
                    runtime
                }
            };
            Ok(Arc::new(Route {
                prefix,
                source,
                current: ArcSwap::new(runtime),
                generation: AtomicU64::new(0),
            }))
        };
        let mut routes = Vec::with_capacity(prefixed.len());
        for (prefix, source) in prefixed {
            if routes
                .iter()
                .any(|r: &Arc<Route>| r.prefix.as_ref() == Some(&prefix))
            {
                anyhow::bail!("route {prefix} is given twice");
            }
            routes.push(build(Some(prefix), source)?);
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.as_ref().map_or(0, String::len)));
        let default = default.map(|source| build(None, source)).transpose()?;
        Ok(Self {
            prefixed: routes,
            default,
        })
    }

    /// The route serving `path` (the request target's path, without the
    /// query), or `None` when no route does.
    pub(crate) fn find(&self, path: &str) -> Option<&Arc<Route>> {
        self.prefixed
            .iter()
            .find(|r| r.prefix.as_deref().is_some_and(|p| serves(p, path)))
            .or(self.default.as_ref())
    }

    /// The default route, if there is one.
    pub(crate) fn default_route(&self) -> Option<&Arc<Route>> {
        self.default.as_ref()
    }

    /// Every route, prefixed ones first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.prefixed.iter().chain(self.default.as_ref())
    }

    /// Reads and compiles every file-backed route's component again (once
    /// per file) and swaps each one that loads in; one that fails keeps its
    /// previous version. Returns one outcome per route that has a file.
    /// Blocking: run it off the async workers.
    pub(crate) fn reload(&self, base: &Arc<Base>) -> Vec<Reloaded> {
        let mut compiled: HashMap<PathBuf, Result<Arc<Runtime>, String>> = HashMap::new();
        let mut outcomes = Vec::new();
        for route in self.all() {
            let Source::File(path) = &route.source else {
                continue;
            };
            let result = compiled
                .entry(path.clone())
                .or_insert_with(|| {
                    route
                        .source
                        .bytes()
                        .and_then(|bytes| Runtime::compile(base.clone(), &bytes))
                        .map(Arc::new)
                        .map_err(|e| format!("{e:#}"))
                })
                .clone();
            let outcome = match result {
                Ok(runtime) => {
                    route.current.store(runtime);
                    let generation = route.generation.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::info!(route = route.name(), component = %path.display(), generation, "reloaded");
                    Ok(generation)
                }
                Err(e) => {
                    tracing::error!(
                        route = route.name(),
                        component = %path.display(),
                        "reload refused, the previous version keeps serving: {e}"
                    );
                    Err(e)
                }
            };
            outcomes.push(Reloaded {
                route: route.name().to_owned(),
                outcome,
            });
        }
        outcomes
    }
}

/// What a reload did to one route.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// The route: its path prefix, or `default`.
    pub route: String,
    /// The route's new generation (reloads so far), or why the new version
    /// was refused (the previous one keeps serving).
    pub outcome: Result<u64, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(serves("/chat", "/chat"));
        assert!(serves("/chat", "/chat/rooms/a"));
        assert!(!serves("/chat", "/chatter"));
        assert!(!serves("/chat", "/"));
        assert!(serves("/", "/anything"));
        assert!(serves("/a/b", "/a/b/"));
        assert!(!serves("/a/b", "/a"));
    }

    #[test]
    fn prefixes_are_normalised_and_checked() {
        assert_eq!(normalise_prefix("/chat/").unwrap(), "/chat");
        assert_eq!(normalise_prefix("///").unwrap(), "/");
        assert_eq!(normalise_prefix("/").unwrap(), "/");
        assert!(normalise_prefix("chat").is_err());
        assert!(normalise_prefix("/chat?x=1").is_err());
        assert!(normalise_prefix("/a b").is_err());
    }
}
