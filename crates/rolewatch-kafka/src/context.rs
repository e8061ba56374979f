//! The librdkafka callbacks: rebalances become messages on a channel, statistics and errors
//! become the readiness flag, and librdkafka's log goes to `tracing`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::{DurablePositions, StartPosition};

/// One partition handed to this consumer, and where reading starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The last durable offset when the partition was assigned; reading starts right after
    /// it. `None`: nothing was durable, reading starts at the configured start position.
    pub durable_offset: Option<i64>,
}

/// A change of this consumer's partitions, delivered to the run loop in order with records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// Partitions were added. Records of them arrive after this event.
    Assigned(Vec<AssignedPartition>),
    /// Partitions were taken away. The run loop drops what it buffered for them and has not
    /// made durable: the new owner reads it again from the durable position.
    Revoked {
        /// The partitions, as `(topic, partition)`.
        partitions: Vec<(String, i32)>,
        /// True when the group lost them without a clean hand-over (session timeout).
        lost: bool,
    },
    /// The group protocol failed; every partition was unassigned.
    Failed {
        /// librdkafka's description.
        reason: String,
    },
}

/// What readiness needs of librdkafka's statistics (its STATISTICS.md: `brokers`, keyed by
/// name, each with its connection `state`).
#[derive(Debug, Deserialize)]
struct BrokerStates {
    brokers: HashMap<String, BrokerState>,
}

#[derive(Debug, Deserialize)]
struct BrokerState {
    state: String,
}

impl BrokerStates {
    /// True when a connection to any broker is up: a learned broker, the bootstrap address
    /// (node id -1, which librdkafka may be using alone while it rebootstraps) or the group
    /// coordinator's logical connection.
    fn any_up(&self) -> bool {
        self.brokers.values().any(|broker| broker.state == "UP")
    }
}

/// Shared between the consumer's callbacks and [`crate::KafkaSource`].
pub(crate) struct SourceContext {
    pub(crate) durable: Arc<dyn DurablePositions>,
    pub(crate) start_without_durable: StartPosition,
    pub(crate) rebalances: mpsc::UnboundedSender<RebalanceEvent>,
    pub(crate) ready: Arc<AtomicBool>,
    /// Set once a statistics message could not be read (warned about once).
    pub(crate) stats_unreadable: AtomicBool,
}

impl SourceContext {
    /// Sets readiness and says when it changes.
    pub(crate) fn set_ready(&self, ready: bool) {
        if self.ready.swap(ready, Ordering::Relaxed) != ready {
            if ready {
                tracing::info!("kafka: a broker is reachable; ready");
            } else {
                tracing::warn!("kafka: no broker is reachable; not ready");
            }
        }
    }

    fn send(&self, event: RebalanceEvent) {
        // The receiver is gone only while the source is being dropped: nothing to tell.
        if self.rebalances.send(event).is_err() {
            tracing::debug!("rebalance event after the source was dropped");
        }
    }

    fn start_offset(&self, durable_offset: Option<i64>) -> Offset {
        match durable_offset.and_then(|offset| offset.checked_add(1)) {
            Some(next) => Offset::Offset(next),
            None => match self.start_without_durable {
                StartPosition::Earliest => Offset::Beginning,
                StartPosition::Latest => Offset::End,
                StartPosition::Committed => Offset::Stored,
            },
        }
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, offered: &TopicPartitionList) {
        let mut assignment = TopicPartitionList::new();
        let mut partitions = Vec::new();
        for element in offered.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            let durable_offset = self.durable.durable_offset(topic, partition);
            let start = self.start_offset(durable_offset);
            if let Err(error) = assignment.add_partition_offset(topic, partition, start) {
                tracing::error!(topic, partition, %error, "cannot set the start offset");
            }
            tracing::info!(topic, partition, ?durable_offset, ?start, "partition assigned");
            partitions.push(AssignedPartition { topic: topic.to_owned(), partition, durable_offset });
        }
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(&assignment),
            _ => consumer.assign(&assignment),
        };
        match result {
            Ok(()) => self.send(RebalanceEvent::Assigned(partitions)),
            Err(error) => {
                tracing::error!(%error, "cannot assign partitions");
                self.send(RebalanceEvent::Failed { reason: format!("cannot assign partitions: {error}") });
            }
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, revoked: &TopicPartitionList) {
        let lost = consumer.assignment_lost();
        let partitions: Vec<(String, i32)> = revoked
            .elements()
            .iter()
            .map(|element| (element.topic().to_owned(), element.partition()))
            .collect();
        tracing::info!(?partitions, lost, "partitions revoked");
        // Tell the run loop first: records of these partitions must not be acknowledged after
        // this point, whatever the unassign below does.
        self.send(RebalanceEvent::Revoked { partitions, lost });
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(revoked),
            _ => consumer.unassign(),
        };
        if let Err(error) = result {
            tracing::error!(%error, "cannot unassign partitions");
        }
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(facility, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Warning => tracing::warn!(facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility, "librdkafka: {message}"),
        }
    }

    /// Only the brokers' states are read, not rdkafka's whole [`rdkafka::statistics::Statistics`]:
    /// that type requires every field librdkafka may write, and a statistics message it cannot
    /// parse would leave readiness stale (rdkafka only logs the failure).
    fn stats_raw(&self, statistics: &[u8]) {
        match serde_json::from_slice::<BrokerStates>(statistics) {
            Ok(states) => self.set_ready(states.any_up()),
            Err(error) => {
                if !self.stats_unreadable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "cannot read librdkafka's statistics; readiness is not updated from them");
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.set_ready(false);
        }
        tracing::warn!(%error, reason, "kafka client error");
    }
}

impl ConsumerContext for SourceContext {
    /// Replaces rdkafka's default: partitions are assigned at the position after the last
    /// durable record (kafka-delta-ingest's seek-on-assign, done in the assignment itself so no
    /// record before it is ever fetched), and every change is sent to the run loop.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        error: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        match error {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, partitions),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, partitions),
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::error!(error = %code, "rebalance failed");
                self.send(RebalanceEvent::Failed { reason: code.to_string() });
                if let Err(error) = consumer.unassign() {
                    tracing::error!(%error, "cannot unassign partitions");
                }
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        // Commits only feed lag tools (progress lives in the lake), so a failure is logged and
        // the next commit carries a newer offset anyway.
        if let Err(error) = result {
            tracing::warn!(%error, partitions = offsets.count(), "offset commit failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BrokerStates;

    /// The shape librdkafka 2.12 writes (trimmed), with the bootstrap entry and the learned
    /// broker in the given states.
    fn statistics(bootstrap: &str, learned: &str) -> String {
        format!(
            r#"{{"name":"rdkafka#consumer-1","client_id":"rolewatch","type":"consumer","ts":1,"time":1,
            "age":1,"replyq":0,"brokers":{{
              "127.0.0.1:9092/bootstrap":{{"name":"127.0.0.1:9092/bootstrap","nodeid":-1,
                "nodename":"127.0.0.1:9092","source":"configured","state":"{bootstrap}","stateage":1,
                "rtt":{{"min":0,"max":0,"avg":0,"sum":0,"cnt":0}},"toppars":{{}}}},
              "127.0.0.1:9092/1":{{"name":"127.0.0.1:9092/1","nodeid":1,"nodename":"127.0.0.1:9092",
                "source":"learned","state":"{learned}","stateage":1,"toppars":{{"audit-0":
                {{"topic":"audit","partition":0}}}}}}}},
            "topics":{{}},"cgrp":{{"state":"up","join_state":"steady"}}}}"#
        )
    }

    fn any_up(json: &str) -> bool {
        serde_json::from_str::<BrokerStates>(json).unwrap().any_up()
    }

    #[test]
    fn any_connection_up_is_ready() {
        assert!(any_up(&statistics("INIT", "UP")));
        assert!(any_up(&statistics("UP", "DOWN")), "the bootstrap connection reaches the cluster too");
        assert!(!any_up(&statistics("DOWN", "CONNECT")));
        assert!(!any_up(&statistics("INIT", "TRY_CONNECT")));
    }

    #[test]
    fn only_the_brokers_states_are_required() {
        // rdkafka's full `Statistics` rejects this (its fields are all required); readiness
        // must not depend on them.
        let bare = r#"{"brokers":{"b/1":{"state":"UP"}}}"#;
        assert!(serde_json::from_str::<rdkafka::statistics::Statistics>(bare).is_err());
        assert!(any_up(bare));
        assert!(serde_json::from_str::<BrokerStates>(r#"{"name":"x"}"#).is_err(), "no brokers: unreadable");
    }
}
