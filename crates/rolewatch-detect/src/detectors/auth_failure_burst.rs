//! `auth_failure_burst`: more than `failures` failed logins for one role, or from one client
//! address, within `window` (password guessing, password spraying); and, at a higher severity,
//! a successful login for that role or from that address within `success_within` after the
//! burst (the guess worked).
//!
//! One attack is one alert: when a failure puts both its role and its address over the
//! threshold, the alert is keyed by the role (the address is in its labels); the address key is
//! used when only the address is bursting (one address, many roles).

use std::collections::VecDeque;

use crate::fast::FastMap;

use chrono::{DateTime, TimeDelta, Utc};
use rolewatch_event::{Alert, AuditEvent, Severity, StatementClass};
use serde::{Deserialize, Serialize};

use super::{Alerts, Common, Detector, EventContext, alert_for, origin_phrase, window_phrase};
use crate::ConfigError;
use crate::patterns::parse_positive_duration;
use crate::roles::RoleMap;
use crate::state::{EngineState, FailedLogins};

/// The detector id.
pub const ID: &str = "auth_failure_burst";

/// `[detectors.auth_failure_burst]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthFailureBurstConfig {
    /// Whether the detector runs. Default: `true`.
    pub enabled: bool,
    /// Severity of a burst of failures. Default: `medium`.
    pub severity: Severity,
    /// Severity of a successful login after a burst. Default: `high`.
    pub success_severity: Severity,
    /// Repeats of the same dedup key (detector + role or address) within this event-time
    /// window fold into one alert. Default: `"10m"`.
    pub dedup_window: String,
    /// Roles never alerted on (names, globs, `@group`, `@class`). Default: none.
    pub exempt_roles: Vec<String>,
    /// Alert when more than this many failed logins (`>`) happen within `window`. Default: `5`.
    pub failures: u32,
    /// The sliding window failures are counted in. Default: `"1m"`.
    pub window: String,
    /// How long after a burst a successful login for the same role or from the same address
    /// raises the success-after-burst alert. Default: `"15m"`.
    pub success_within: String,
}

impl Default for AuthFailureBurstConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Medium,
            success_severity: Severity::High,
            dedup_window: "10m".to_owned(),
            exempt_roles: Vec::new(),
            failures: 5,
            window: "1m".to_owned(),
            success_within: "15m".to_owned(),
        }
    }
}

/// The recent failures of one role or address.
#[derive(Debug, Clone, Default)]
struct Failures {
    /// The newest `failures + 1` failure times, oldest first: enough to tell "more than
    /// `failures` within the window" in bounded memory.
    recent: VecDeque<DateTime<Utc>>,
    /// When the last burst was detected.
    last_burst: Option<DateTime<Utc>>,
}

impl Failures {
    fn export(&self) -> FailedLogins {
        FailedLogins { recent: self.recent.iter().copied().collect(), last_burst: self.last_burst }
    }

    /// Adds saved failures (kept in time order, the newest `limit + 1`) and the later burst.
    fn import(&mut self, saved: &FailedLogins, limit: usize) {
        self.recent.extend(saved.recent.iter().copied());
        self.recent.make_contiguous().sort_unstable();
        while self.recent.len() > limit + 1 {
            self.recent.pop_front();
        }
        self.last_burst = self.last_burst.max(saved.last_burst);
    }

    /// Records a failure at `ts`; returns whether more than `limit` fall within `window`.
    fn record(&mut self, ts: DateTime<Utc>, limit: usize, window: TimeDelta) -> bool {
        let position = self.recent.iter().rposition(|&seen| seen <= ts).map_or(0, |index| index + 1);
        self.recent.insert(position, ts);
        while self.recent.len() > limit + 1 {
            self.recent.pop_front();
        }
        let newest = self.recent.back().copied().unwrap_or(ts);
        let within = self.recent.iter().filter(|&&seen| seen > newest - window).count();
        let burst = within > limit;
        if burst {
            self.last_burst = Some(self.last_burst.map_or(ts, |last| last.max(ts)));
        }
        burst
    }

    /// Takes the burst that `ts` follows within `success_within`, if any.
    fn take_burst_before(&mut self, ts: DateTime<Utc>, success_within: TimeDelta) -> bool {
        match self.last_burst {
            Some(burst) if burst <= ts && ts - burst <= success_within => {
                self.last_burst = None;
                self.recent.clear();
                true
            }
            _ => false,
        }
    }
}

/// The runtime of `auth_failure_burst`.
pub(crate) struct AuthFailureBurst {
    common: Common,
    success_severity: Severity,
    limit: usize,
    window: TimeDelta,
    success_within: TimeDelta,
    by_role: FastMap<String, Failures>,
    by_address: FastMap<String, Failures>,
}

impl AuthFailureBurst {
    pub(crate) fn new(config: &AuthFailureBurstConfig, roles: &RoleMap) -> Result<Option<Self>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        let key = |field: &str| format!("detectors.{ID}.{field}");
        Ok(Some(Self {
            common: Common::new(ID, config.severity, &config.dedup_window, &config.exempt_roles, roles)?,
            success_severity: config.success_severity,
            limit: usize::try_from(config.failures).unwrap_or(usize::MAX),
            window: parse_positive_duration(&key("window"), &config.window)?,
            success_within: parse_positive_duration(&key("success_within"), &config.success_within)?,
            by_role: FastMap::default(),
            by_address: FastMap::default(),
        }))
    }

    fn labels(&self, alert: &mut Alert, keyed_by: &str) {
        alert.labels.insert("keyed_by".to_owned(), keyed_by.to_owned());
        alert.labels.insert("failures".to_owned(), self.limit.to_string());
        alert.labels.insert("window".to_owned(), window_phrase(self.window));
    }

    fn on_failure(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        let (limit, window) = (self.limit, self.window);
        let role_burst =
            context.role.is_some_and(|role| record(&mut self.by_role, role, event.ts, limit, window));
        let address_burst = event
            .client_addr
            .as_deref()
            .is_some_and(|address| record(&mut self.by_address, address, event.ts, limit, window));
        if !(role_burst || address_burst) || self.common.is_exempt(context) {
            return;
        }
        let role = context.role_name();
        let window_text = window_phrase(self.window);
        let address = event.client_addr.as_deref().unwrap_or("a local connection");
        let (summary, dedup_key, keyed_by) = if role_burst {
            (
                format!(
                    "more than {} failed logins for {role} within {window_text}, the last {}",
                    self.limit,
                    origin_phrase(event)
                ),
                format!("{ID}|role|{role}"),
                "role",
            )
        } else {
            (
                format!(
                    "more than {} failed logins from {address} within {window_text}, the last for {role}",
                    self.limit
                ),
                format!("{ID}|address|{address}"),
                "client_addr",
            )
        };
        let mut alert = alert_for(event, ID, self.common.severity, dedup_key, summary);
        self.labels(&mut alert, keyed_by);
        out.push(alert);
    }

    fn on_success(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        let success_within = self.success_within;
        let after_role_burst = context
            .role
            .and_then(|role| self.by_role.get_mut(role))
            .is_some_and(|failures| failures.take_burst_before(event.ts, success_within));
        let after_address_burst = event
            .client_addr
            .as_deref()
            .and_then(|address| self.by_address.get_mut(address))
            .is_some_and(|failures| failures.take_burst_before(event.ts, success_within));
        if !(after_role_burst || after_address_burst) || self.common.is_exempt(context) {
            return;
        }
        let role = context.role_name();
        let (what, dedup_key, keyed_by) = if after_role_burst {
            (format!("for {role}"), format!("{ID}|success|role|{role}"), "role")
        } else {
            let address = event.client_addr.as_deref().unwrap_or("");
            (format!("from {address}"), format!("{ID}|success|address|{address}"), "client_addr")
        };
        let summary = format!(
            "{role} logged in {} after a burst of more than {} failed logins {what} within {}",
            origin_phrase(event),
            self.limit,
            window_phrase(self.window)
        );
        let mut alert = alert_for(event, ID, self.success_severity, dedup_key, summary);
        self.labels(&mut alert, keyed_by);
        alert.labels.insert("kind".to_owned(), "success_after_burst".to_owned());
        out.push(alert);
    }
}

fn record(
    map: &mut FastMap<String, Failures>,
    key: &str,
    ts: DateTime<Utc>,
    limit: usize,
    window: TimeDelta,
) -> bool {
    match map.get_mut(key) {
        Some(failures) => failures.record(ts, limit, window),
        None => map.entry(key.to_owned()).or_default().record(ts, limit, window),
    }
}

impl Detector for AuthFailureBurst {
    fn id(&self) -> &'static str {
        ID
    }

    fn dedup_window(&self) -> TimeDelta {
        self.common.dedup_window
    }

    fn observe(&mut self, event: &AuditEvent, context: &EventContext<'_>, out: &mut Alerts<'_>) {
        if event.class != StatementClass::Connect {
            return;
        }
        if event.success {
            self.on_success(event, context, out);
        } else {
            self.on_failure(event, context, out);
        }
    }

    fn advance(&mut self, watermark: DateTime<Utc>, _out: &mut Alerts<'_>) {
        let (window, success_within) = (self.window, self.success_within);
        let live = |failures: &Failures| {
            failures.recent.back().is_some_and(|&newest| newest > watermark - window)
                || failures.last_burst.is_some_and(|burst| burst > watermark - success_within)
        };
        self.by_role.retain(|_, failures| live(failures));
        self.by_address.retain(|_, failures| live(failures));
    }

    fn export(&self, state: &mut EngineState) {
        let export = |map: &FastMap<String, Failures>| {
            map.iter().map(|(key, failures)| (key.clone(), failures.export())).collect()
        };
        state.windows.failed_logins_by_role = export(&self.by_role);
        state.windows.failed_logins_by_address = export(&self.by_address);
    }

    fn import(&mut self, state: &EngineState) {
        let limit = self.limit;
        for (map, saved) in [
            (&mut self.by_role, &state.windows.failed_logins_by_role),
            (&mut self.by_address, &state.windows.failed_logins_by_address),
        ] {
            for (key, failures) in saved {
                map.entry(key.clone()).or_default().import(failures, limit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{connect, engine_with, run};

    #[test]
    fn six_failures_then_success_is_one_burst_and_one_success_alert() {
        let mut engine = engine_with(|_| {});
        let mut events: Vec<_> = (0..6).map(|second| connect("app_reader", second, false)).collect();
        events.push(connect("app_reader", 10, true));
        let alerts = run(&mut engine, &events);
        let summaries: Vec<_> =
            alerts.iter().map(|alert| (alert.severity, alert.count, alert.summary.as_str())).collect();
        assert_eq!(
            summaries,
            [
                (
                    Severity::Medium,
                    1,
                    "more than 5 failed logins for app_reader within 1m, the last from 127.0.0.1"
                ),
                (
                    Severity::High,
                    1,
                    "app_reader logged in from 127.0.0.1 (webapp) after a burst of more than 5 failed logins for \
                     app_reader within 1m"
                ),
            ]
        );
    }

    #[test]
    fn five_failures_or_slow_failures_are_fine() {
        let mut engine = engine_with(|_| {});
        let mut events: Vec<_> = (0..5).map(|second| connect("app_reader", second, false)).collect();
        events.push(connect("app_reader", 10, true));
        assert!(run(&mut engine, &events).is_empty());
        let mut engine = engine_with(|_| {});
        let slow: Vec<_> = (0..10).map(|step| connect("app_reader", step * 20, false)).collect();
        assert!(run(&mut engine, &slow).is_empty());
    }

    #[test]
    fn spraying_from_one_address_is_keyed_by_address() {
        let mut engine = engine_with(|_| {});
        let events: Vec<_> = (0..6).map(|second| connect(&format!("user{second}"), second, false)).collect();
        let alerts = run(&mut engine, &events);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].labels["keyed_by"], "client_addr");
        assert_eq!(
            alerts[0].summary,
            "more than 5 failed logins from 127.0.0.1 within 1m, the last for user5"
        );
    }
}
