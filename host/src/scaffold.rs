//! `ws-edge new NAME`: writes a handler project that builds with a plain
//! `cargo build --release`, tests with a plain `cargo test` and serves with
//! `ws-edge serve`. The files are the templates in `host/templates/new/`,
//! compiled into the binary.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The template files: the path written (relative to the project) and the
/// text with `{{name}}`, `{{crate}}`, `{{guest}}` and `{{runner}}` to fill.
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/new/Cargo.toml.tmpl"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../templates/new/dot-cargo/config.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/new/src/lib.rs.tmpl"),
    ),
    ("README.md", include_str!("../templates/new/README.md.tmpl")),
    (
        ".gitignore",
        include_str!("../templates/new/gitignore.tmpl"),
    ),
];

/// The guest library of the checkout this binary was built from.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest");

/// What to fill the templates with.
pub(crate) struct Project {
    /// The package name (`my-handler`).
    pub(crate) name: String,
    /// The `ws-edge-guest` directory the project depends on.
    pub(crate) guest: PathBuf,
    /// The command that runs `cargo test`'s binaries (`ws-edge`, or this
    /// binary's path when `ws-edge` on `PATH` is not this binary).
    pub(crate) runner: String,
}

/// Checks that `name` is a package name cargo accepts and that makes a
/// library name: ASCII letters, digits, `-` and `_`, starting with a
/// letter, at most 64 characters.
pub(crate) fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!(
            "{name:?} is not a usable package name: use ASCII letters, digits, `-` and `_`, \
             starting with a letter (at most 64 characters)"
        );
    }
    Ok(())
}

/// The `ws-edge-guest` directory to depend on: `explicit`, else the one of
/// the checkout this binary was built from.
pub(crate) fn guest_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = explicit.unwrap_or(Path::new(BUILT_FROM));
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "no ws-edge-guest crate at {} (this ws-edge was built elsewhere?); \
             pass --guest PATH, the guest/ directory of a ws-edge checkout",
            dir.display()
        )
    })?;
    if !text.contains("name = \"ws-edge-guest\"") {
        bail!("{} is not the ws-edge-guest crate", manifest.display());
    }
    dir.canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))
}

/// `ws-edge` if that name on `PATH` is this binary, else this binary's path.
pub(crate) fn runner() -> String {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "ws-edge".into();
    };
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("ws-edge"))
            .find(|p| p.is_file())
    });
    match on_path.and_then(|p| p.canonicalize().ok()) {
        Some(found) if found == me => "ws-edge".into(),
        _ => me.display().to_string(),
    }
}

impl Project {
    /// The files of the project: relative path and contents.
    pub(crate) fn render(&self) -> Vec<(&'static str, String)> {
        let crate_name = self.name.replace('-', "_");
        let guest = self.guest.display().to_string();
        FILES
            .iter()
            .map(|(path, text)| {
                let text = text
                    .replace("{{name}}", &self.name)
                    .replace("{{crate}}", &crate_name)
                    .replace("{{guest}}", &toml_escape(&guest))
                    .replace("{{runner}}", &toml_escape(&self.runner));
                (*path, text)
            })
            .collect()
    }

    /// Writes the project into `dir`, which must not exist yet.
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<()> {
        if dir.exists() {
            bail!("{} exists already", dir.display());
        }
        for (path, text) in self.render() {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// `text` as the inside of a TOML basic string.
fn toml_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        Project {
            name: "my-handler".into(),
            guest: PathBuf::from("/src/ws \"edge\"/guest"),
            runner: "ws-edge".into(),
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let files = project().render();
        assert_eq!(files.len(), FILES.len());
        for (path, text) in &files {
            assert!(!text.contains("{{"), "{path}: {text}");
        }
        let (_, manifest) = &files[0];
        assert!(manifest.contains("name = \"my-handler\""));
        assert!(manifest.contains(r#"path = "/src/ws \"edge\"/guest""#));
        assert!(manifest.contains("crate-type = [\"cdylib\"]"));
        assert!(manifest.contains("release/my_handler.wasm"));
        let (_, config) = &files[1];
        assert!(config.contains("target = \"wasm32-wasip2\""));
        assert!(config.contains("runner = [\"ws-edge\", \"run\"]"));
    }

    #[test]
    fn names_must_make_a_crate() {
        for good in ["echo", "my-handler", "a_b9"] {
            check_name(good).expect(good);
        }
        for bad in ["", "9lives", "-x", "a b", "ü", "../x", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_guest_crate_of_this_checkout_is_found() {
        let dir = guest_dir(None).expect("built inside the repository");
        assert!(dir.join("src/testing.rs").is_file());
        assert!(guest_dir(Some(Path::new("/nonexistent"))).is_err());
        let not_guest = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(guest_dir(Some(not_guest)).is_err());
    }

    #[test]
    fn write_refuses_an_existing_directory() {
        let dir = std::env::temp_dir();
        assert!(project().write(&dir).is_err());
    }
}
