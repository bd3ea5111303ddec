//! The component's configuration channel: connection settings read from the
//! instance's environment (`wasi:cli/environment`).
//!
//! The host gives a component's instances exactly the variables its operator
//! set (`ws-edge serve --env KEY=VALUE`, or `ServerBuilder::env`) and nothing
//! else. [`config_from_env`] applies the `WS_EDGE_*` keys below to a base
//! [`Config`]; the default [`Handler::connection_config`] is
//! `config_from_env(Config::default())`.
//!
//! | variable | [`Config`] field | value |
//! |---|---|---|
//! | `WS_EDGE_MAX_FRAME_PAYLOAD` | `max_frame_payload` | bytes |
//! | `WS_EDGE_MAX_MESSAGE` | `max_message` | bytes |
//! | `WS_EDGE_HIGH_WATER_MARK` | `high_water_mark` | bytes |
//! | `WS_EDGE_FRAGMENT_THRESHOLD` | `fragment_threshold` | bytes; `0` never fragments |
//! | `WS_EDGE_KEEPALIVE_INTERVAL_MS` | `keepalive_interval_ms` | milliseconds; `0` turns keepalive off |
//! | `WS_EDGE_KEEPALIVE_GRACE_MS` | `keepalive_grace_ms` | milliseconds; `0` never drops the peer |
//! | `WS_EDGE_CLOSE_TIMEOUT_MS` | `close_timeout_ms` | milliseconds |
//! | `WS_EDGE_AUTO_PONG` | `auto_pong` | `true` or `false` |
//!
//! [`deflate_from_env`] applies these to the permessage-deflate policy of
//! [`AcceptOptions::deflate`](ws_edge::handshake::AcceptOptions) (the glue
//! calls it on every accept, so they work for any handler):
//!
//! | variable | [`DeflateConfig`] field | value |
//! |---|---|---|
//! | `WS_EDGE_DEFLATE` | on or off | `on` (the handler's policy, else [`DeflateConfig::default`]) or `off` |
//! | `WS_EDGE_DEFLATE_THRESHOLD` | `threshold` | bytes |
//! | `WS_EDGE_DEFLATE_LEVEL` | `level` | 0–9 |
//! | `WS_EDGE_DEFLATE_NO_CONTEXT_TAKEOVER` | `server_no_context_takeover`, `client_no_context_takeover` | `true` or `false` |
//! | `WS_EDGE_DEFLATE_WINDOW_BITS` | `server_max_window_bits`, `client_max_window_bits` | 9–15 |
//!
//! `WS_EDGE_LOG` (`off`, `error`, `warn`, `info`, `debug`, `trace`) is the
//! level of the logger of the `log` feature (module `logging`).
//!
//! The `WS_EDGE_DEFLATE_*` settings change a policy that is on (by the
//! handler or `WS_EDGE_DEFLATE=on`); they do not turn it on.
//!
//! Numbers are plain decimal integers (`16777216`, not `16M` or `0x1000000`).
//! A malformed value, and any other variable starting with `WS_EDGE_`, is
//! reported on stderr (which the host logs, labelled with the component) and
//! ignored: the base value stays. The environment is read and reported once
//! per instance, at the first [`config_from_env`] call, not per connection.
//!
//! [`Handler::connection_config`]: crate::Handler::connection_config

use std::sync::OnceLock;

use ws_edge::deflate::DeflateConfig;
use ws_edge::protocol::Config;

/// The prefix of the variables this module reads; other variables with it
/// are reported as unknown.
const PREFIX: &str = "WS_EDGE_";

/// Returns `base` with the `WS_EDGE_*` settings of this instance's
/// environment applied (see the [module documentation](self) for the keys).
///
/// Start from the settings your handler wants and let the operator override
/// them:
///
/// ```ignore
/// fn connection_config(_request: &Request) -> Config {
///     config_from_env(Config {
///         fragment_threshold: None,
///         ..Config::default()
///     })
/// }
/// ```
///
/// The environment is parsed once per instance; malformed values and unknown
/// `WS_EDGE_*` keys are reported on stderr at that point and ignored.
pub fn config_from_env(base: Config) -> Config {
    overrides().apply(base)
}

/// Returns the permessage-deflate policy `base` (`None`: off) with the
/// `WS_EDGE_DEFLATE*` settings of this instance's environment applied (see
/// the [module documentation](self)). The glue applies it to the accept
/// options of every handler, so the operator can turn compression on or off
/// and tune it without rebuilding the component.
pub fn deflate_from_env(base: Option<DeflateConfig>) -> Option<DeflateConfig> {
    overrides().apply_deflate(base)
}

/// The settings of this instance's environment, parsed (and reported) once.
fn overrides() -> &'static Overrides {
    static OVERRIDES: OnceLock<Overrides> = OnceLock::new();
    OVERRIDES.get_or_init(|| {
        let vars = std::env::vars_os().filter_map(|(key, value)| {
            // A key that is not UTF-8 is not one of ours; a value that is
            // not is reported as malformed by `parse`.
            let key = key.into_string().ok()?;
            Some((key, value.to_string_lossy().into_owned()))
        });
        let (overrides, problems) = Overrides::parse(vars);
        for problem in problems {
            eprintln!("ws-edge-guest: {problem}");
        }
        overrides
    })
}

/// The settings found in an environment; `None` keeps the base value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Overrides {
    max_frame_payload: Option<u64>,
    max_message: Option<u64>,
    high_water_mark: Option<usize>,
    /// `Some(None)`: never fragment.
    fragment_threshold: Option<Option<usize>>,
    /// `Some(None)`: keepalive off.
    keepalive_interval_ms: Option<Option<u64>>,
    /// `Some(None)`: never drop the peer.
    keepalive_grace_ms: Option<Option<u64>>,
    close_timeout_ms: Option<u64>,
    auto_pong: Option<bool>,
    deflate: Option<bool>,
    deflate_threshold: Option<usize>,
    deflate_level: Option<u32>,
    deflate_no_context_takeover: Option<bool>,
    deflate_window_bits: Option<u8>,
}

impl Overrides {
    /// Parses `vars` (an environment's key/value pairs): the settings, and a
    /// message for each malformed value or unknown `WS_EDGE_*` key. When a
    /// key repeats, its last well-formed value wins.
    pub(crate) fn parse<I, K, V>(vars: I) -> (Overrides, Vec<String>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut o = Overrides::default();
        let mut problems = Vec::new();
        for (key, value) in vars {
            let (key, value) = (key.as_ref(), value.as_ref());
            if !key.starts_with(PREFIX) {
                continue;
            }
            let ok = match key {
                "WS_EDGE_MAX_FRAME_PAYLOAD" => set(&mut o.max_frame_payload, number(value)),
                "WS_EDGE_MAX_MESSAGE" => set(&mut o.max_message, number(value)),
                "WS_EDGE_HIGH_WATER_MARK" => set(&mut o.high_water_mark, number(value)),
                "WS_EDGE_FRAGMENT_THRESHOLD" => set(
                    &mut o.fragment_threshold,
                    number(value).map(|n: usize| (n != 0).then_some(n)),
                ),
                "WS_EDGE_KEEPALIVE_INTERVAL_MS" => set(
                    &mut o.keepalive_interval_ms,
                    number(value).map(|n: u64| (n != 0).then_some(n)),
                ),
                "WS_EDGE_KEEPALIVE_GRACE_MS" => set(
                    &mut o.keepalive_grace_ms,
                    number(value).map(|n: u64| (n != 0).then_some(n)),
                ),
                "WS_EDGE_CLOSE_TIMEOUT_MS" => set(&mut o.close_timeout_ms, number(value)),
                "WS_EDGE_AUTO_PONG" => set(&mut o.auto_pong, boolean(value)),
                "WS_EDGE_DEFLATE" => set(
                    &mut o.deflate,
                    match value {
                        "on" => Some(true),
                        "off" => Some(false),
                        _ => None,
                    },
                ),
                "WS_EDGE_DEFLATE_THRESHOLD" => set(&mut o.deflate_threshold, number(value)),
                "WS_EDGE_DEFLATE_LEVEL" => set(
                    &mut o.deflate_level,
                    number(value).filter(|&n: &u32| n <= 9),
                ),
                "WS_EDGE_DEFLATE_NO_CONTEXT_TAKEOVER" => {
                    set(&mut o.deflate_no_context_takeover, boolean(value))
                }
                "WS_EDGE_DEFLATE_WINDOW_BITS" => set(
                    &mut o.deflate_window_bits,
                    number(value).filter(|n: &u8| (9..=15).contains(n)),
                ),
                // The log level, read by the logger (feature `log`); known
                // here so it is never reported as unknown.
                "WS_EDGE_LOG" => continue,
                _ => {
                    problems.push(format!("ignoring unknown setting {key}"));
                    continue;
                }
            };
            if !ok {
                let expected = match key {
                    "WS_EDGE_AUTO_PONG" | "WS_EDGE_DEFLATE_NO_CONTEXT_TAKEOVER" => {
                        "`true` or `false`"
                    }
                    "WS_EDGE_DEFLATE" => "`on` or `off`",
                    "WS_EDGE_DEFLATE_LEVEL" => "a decimal integer 0-9",
                    "WS_EDGE_DEFLATE_WINDOW_BITS" => "a decimal integer 9-15",
                    _ => "a decimal integer",
                };
                problems.push(format!("ignoring {key}={value:?}: expected {expected}"));
            }
        }
        (o, problems)
    }

    /// `base` with these settings applied.
    pub(crate) fn apply(&self, base: Config) -> Config {
        let o = *self;
        Config {
            max_frame_payload: o.max_frame_payload.unwrap_or(base.max_frame_payload),
            max_message: o.max_message.unwrap_or(base.max_message),
            high_water_mark: o.high_water_mark.unwrap_or(base.high_water_mark),
            fragment_threshold: o.fragment_threshold.unwrap_or(base.fragment_threshold),
            keepalive_interval_ms: o
                .keepalive_interval_ms
                .unwrap_or(base.keepalive_interval_ms),
            keepalive_grace_ms: o.keepalive_grace_ms.unwrap_or(base.keepalive_grace_ms),
            close_timeout_ms: o.close_timeout_ms.unwrap_or(base.close_timeout_ms),
            auto_pong: o.auto_pong.unwrap_or(base.auto_pong),
        }
    }

    /// The deflate policy `base` with these settings applied.
    pub(crate) fn apply_deflate(&self, base: Option<DeflateConfig>) -> Option<DeflateConfig> {
        let mut d = match self.deflate {
            Some(false) => return None,
            Some(true) => base.unwrap_or_default(),
            None => base?,
        };
        if let Some(t) = self.deflate_threshold {
            d.threshold = t;
        }
        if let Some(l) = self.deflate_level {
            d.level = l;
        }
        if let Some(off) = self.deflate_no_context_takeover {
            d.server_no_context_takeover = off;
            d.client_no_context_takeover = off;
        }
        if let Some(bits) = self.deflate_window_bits {
            d.server_max_window_bits = bits;
            d.client_max_window_bits = bits;
        }
        Some(d)
    }
}

/// `true` or `false`.
fn boolean(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Stores a parsed value; `false` when there is none (malformed).
fn set<T>(slot: &mut Option<T>, parsed: Option<T>) -> bool {
    match parsed {
        Some(v) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

/// A plain decimal integer (ASCII digits only: no sign, spaces or suffix)
/// that fits `T`.
fn number<T: std::str::FromStr>(value: &str) -> Option<T> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
        let (o, problems) = Overrides::parse(vars.iter().copied());
        (o.apply(Config::default()), problems)
    }

    #[test]
    fn no_variables_keep_the_base() {
        let base = Config {
            fragment_threshold: None,
            max_message: 7,
            ..Config::default()
        };
        let (o, problems) =
            Overrides::parse([("PATH", "/bin"), ("HOME", "/"), ("WS_EDGE_LOG", "debug")]);
        assert_eq!(o, Overrides::default());
        assert!(problems.is_empty());
        assert_eq!(o.apply(base.clone()), base);
    }

    #[test]
    fn every_key() {
        let (config, problems) = parse(&[
            ("WS_EDGE_MAX_FRAME_PAYLOAD", "16777216"),
            ("WS_EDGE_MAX_MESSAGE", "33554432"),
            ("WS_EDGE_HIGH_WATER_MARK", "2097152"),
            ("WS_EDGE_FRAGMENT_THRESHOLD", "4096"),
            ("WS_EDGE_KEEPALIVE_INTERVAL_MS", "1500"),
            ("WS_EDGE_KEEPALIVE_GRACE_MS", "700"),
            ("WS_EDGE_CLOSE_TIMEOUT_MS", "250"),
            ("WS_EDGE_AUTO_PONG", "false"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            config,
            Config {
                max_frame_payload: 16 << 20,
                max_message: 32 << 20,
                high_water_mark: 2 << 20,
                fragment_threshold: Some(4096),
                keepalive_interval_ms: Some(1500),
                keepalive_grace_ms: Some(700),
                close_timeout_ms: 250,
                auto_pong: false,
            }
        );
        let (config, _) = parse(&[("WS_EDGE_AUTO_PONG", "true")]);
        assert!(config.auto_pong);
    }

    #[test]
    fn zero_turns_optional_settings_off() {
        let (config, problems) = parse(&[
            ("WS_EDGE_FRAGMENT_THRESHOLD", "0"),
            ("WS_EDGE_KEEPALIVE_INTERVAL_MS", "0"),
            ("WS_EDGE_KEEPALIVE_GRACE_MS", "0"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.fragment_threshold, None);
        assert_eq!(config.keepalive_interval_ms, None);
        assert_eq!(config.keepalive_grace_ms, None);
        // The others take zero as it is.
        let (config, _) = parse(&[("WS_EDGE_CLOSE_TIMEOUT_MS", "0")]);
        assert_eq!(config.close_timeout_ms, 0);
    }

    #[test]
    fn malformed_values_are_reported_and_ignored() {
        let bad = [
            ("WS_EDGE_MAX_FRAME_PAYLOAD", "16M"),
            ("WS_EDGE_MAX_MESSAGE", "-1"),
            ("WS_EDGE_HIGH_WATER_MARK", ""),
            ("WS_EDGE_FRAGMENT_THRESHOLD", "0x4000"),
            ("WS_EDGE_KEEPALIVE_INTERVAL_MS", " 100"),
            ("WS_EDGE_KEEPALIVE_GRACE_MS", "+5"),
            ("WS_EDGE_CLOSE_TIMEOUT_MS", "99999999999999999999999"),
            ("WS_EDGE_AUTO_PONG", "yes"),
        ];
        let (config, problems) = parse(&bad);
        assert_eq!(config, Config::default());
        assert_eq!(problems.len(), bad.len(), "{problems:?}");
        for ((key, value), problem) in bad.iter().zip(&problems) {
            assert!(problem.contains(key), "{problem}");
            assert!(problem.contains(&format!("{value:?}")), "{problem}");
        }
        assert!(problems[7].contains("`true` or `false`"), "{}", problems[7]);
        assert!(problems[0].contains("decimal integer"), "{}", problems[0]);
    }

    #[test]
    fn a_malformed_value_keeps_an_earlier_good_one() {
        let (config, problems) = parse(&[
            ("WS_EDGE_MAX_MESSAGE", "4096"),
            ("WS_EDGE_MAX_MESSAGE", "lots"),
        ]);
        assert_eq!(config.max_message, 4096);
        assert_eq!(problems.len(), 1);
        // The last well-formed value wins.
        let (config, problems) = parse(&[
            ("WS_EDGE_MAX_MESSAGE", "4096"),
            ("WS_EDGE_MAX_MESSAGE", "8192"),
        ]);
        assert_eq!(config.max_message, 8192);
        assert!(problems.is_empty());
    }

    #[test]
    fn unknown_ws_edge_keys_are_reported_and_ignored() {
        let (config, problems) = parse(&[
            ("WS_EDGE_MAX_MESAGE", "1"),
            ("ws_edge_max_message", "1"),
            ("MY_SETTING", "1"),
        ]);
        assert_eq!(config, Config::default());
        assert_eq!(problems, ["ignoring unknown setting WS_EDGE_MAX_MESAGE"]);
    }

    #[test]
    fn usize_settings_reject_values_beyond_usize() {
        let too_big = format!("{}0", usize::MAX);
        let (config, problems) = parse(&[("WS_EDGE_HIGH_WATER_MARK", &too_big)]);
        assert_eq!(config.high_water_mark, Config::default().high_water_mark);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn deflate_settings() {
        let parse = |vars: &[(&str, &str)]| Overrides::parse(vars.iter().copied());
        // Nothing set: the handler's choice stands.
        let (o, _) = parse(&[]);
        assert_eq!(o.apply_deflate(None), None);
        assert_eq!(
            o.apply_deflate(Some(DeflateConfig::low_memory())),
            Some(DeflateConfig::low_memory())
        );
        // Tuning alone does not turn it on.
        let (o, problems) = parse(&[("WS_EDGE_DEFLATE_LEVEL", "6")]);
        assert!(problems.is_empty());
        assert_eq!(o.apply_deflate(None), None);
        assert_eq!(
            o.apply_deflate(Some(DeflateConfig::default()))
                .map(|d| d.level),
            Some(6)
        );
        let (o, problems) = parse(&[
            ("WS_EDGE_DEFLATE", "on"),
            ("WS_EDGE_DEFLATE_THRESHOLD", "0"),
            ("WS_EDGE_DEFLATE_NO_CONTEXT_TAKEOVER", "true"),
            ("WS_EDGE_DEFLATE_WINDOW_BITS", "10"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            o.apply_deflate(None),
            Some(DeflateConfig {
                threshold: 0,
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 10,
                client_max_window_bits: 10,
                ..DeflateConfig::default()
            })
        );
        let (o, _) = parse(&[("WS_EDGE_DEFLATE", "off")]);
        assert_eq!(o.apply_deflate(Some(DeflateConfig::default())), None);
        let bad = [
            ("WS_EDGE_DEFLATE", "yes"),
            ("WS_EDGE_DEFLATE_LEVEL", "10"),
            ("WS_EDGE_DEFLATE_WINDOW_BITS", "8"),
            ("WS_EDGE_DEFLATE_NO_CONTEXT_TAKEOVER", "1"),
        ];
        let (o, problems) = parse(&bad);
        assert_eq!(o, Overrides::default());
        assert_eq!(problems.len(), bad.len(), "{problems:?}");
        assert!(problems[2].contains("9-15"), "{}", problems[2]);
    }

    #[test]
    fn config_from_env_reads_the_process_environment() {
        // No test sets WS_EDGE_* variables, so this is the base unchanged
        // unless the person running the tests did.
        if std::env::vars().all(|(k, _)| !k.starts_with(PREFIX)) {
            assert_eq!(config_from_env(Config::default()), Config::default());
        }
    }
}
