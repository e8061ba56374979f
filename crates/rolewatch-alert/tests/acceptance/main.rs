//! Acceptance tests of alert delivery against real HTTP receivers on 127.0.0.1 port 0
//! (AT-09 to AT-13 of the reliability catalogue, plus the config shape). AT-14 (secrets never
//! leak) is `tests/secrets.rs`, a process of its own because it installs a global subscriber.

#[cfg(test)]
mod at09_retry;
#[cfg(test)]
mod at10_durability;
#[cfg(test)]
mod at11_storm;
#[cfg(test)]
mod at12_signing;
#[cfg(test)]
mod at13_ssrf;
#[cfg(test)]
mod common;
#[cfg(test)]
mod config_shape;
