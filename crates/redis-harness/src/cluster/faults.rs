//! Faults injected into a running [`RedisCluster`]: a node killed as by a crash, started
//! again, a manual failover, and the wait for a replica to take over.

use std::time::{Duration, Instant};

use super::{RedisCluster, SETTLE_TIMEOUT};
use crate::resp::Reply;

impl RedisCluster {
    /// Kills the node at `port`, as a crash would.
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port() == port) {
            node.stop();
        }
    }

    /// Starts the nodes at `ports` again after [`RedisCluster::kill`], each with its
    /// `nodes.conf` but no data, and waits until they have rejoined (as replicas of whoever took
    /// their slots) and every node reports the settled cluster again.
    ///
    /// # Panics
    /// When a node does not start, or the cluster does not settle within 60 s.
    pub fn restart(&mut self, ports: &[u16]) {
        for &port in ports {
            self.nodes
                .iter_mut()
                .find(|n| n.port() == port)
                .unwrap_or_else(|| panic!("no node on port {port}"))
                .restart();
        }
        let expected = self.nodes.len();
        self.wait_settled(expected)
            .unwrap_or_else(|e| panic!("after restarting {ports:?}: {e}"));
    }

    /// `CLUSTER FAILOVER` on the replica at `replica_port`, then waits until it is a primary and
    /// the cluster has settled.
    ///
    /// # Panics
    /// When the failover does not complete within 60 s.
    pub fn failover(&self, replica_port: u16) {
        let reply = self.cmd(replica_port, &["CLUSTER", "FAILOVER"]);
        assert_eq!(reply, Reply::Status("OK".into()), "CLUSTER FAILOVER");
        self.wait_primary(replica_port);
    }

    /// Waits until the node at `port` is a primary serving slots and the cluster has settled.
    ///
    /// # Panics
    /// When that does not happen within 60 s.
    pub fn wait_primary(&self, port: u16) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let running = self.nodes.iter().filter(|n| n.is_running()).count();
        while Instant::now() < deadline {
            let primary = self
                .topology()
                .iter()
                .any(|n| n.port == port && n.primary && !n.slots.is_empty());
            if primary && self.settled(running) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node {port} did not become a settled primary within {SETTLE_TIMEOUT:?}");
    }
}
