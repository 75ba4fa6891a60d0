//! The cluster's topology as a scan needs it: the primaries from `CLUSTER NODES`, checked for
//! a full, healthy slot coverage, the shards they serve, and the hash slot of a key.

use super::super::{BackendResult, ScanCursor};
use crate::error::{BackendError, BackendErrorKind};

/// Number of hash slots of a Redis Cluster.
pub(super) const SLOTS: u32 = 16_384;

/// A primary and the slots it serves, as `CLUSTER NODES` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Shard {
    /// Slot ranges served, sorted and non-empty. The lowest slot names the shard across
    /// failovers (a promoted replica takes over exactly its primary's slots), so cursors stay
    /// meaningful when addresses change.
    pub(super) slots: Vec<(u16, u16)>,
    /// Host exactly as the cluster reports it: redis-rs routes by this string.
    pub(super) host: String,
    pub(super) port: u16,
}

impl Shard {
    pub(super) fn first_slot(&self) -> u16 {
        self.slots.first().map_or(0, |r| r.0)
    }

    pub(super) fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
    }

    /// A 16-bit tag of the address, carried in the cursor to notice a primary change.
    pub(super) fn tag(&self) -> usize {
        let mut h: u32 = 0x811c_9dc5;
        for b in self.host.bytes().chain(self.port.to_be_bytes()) {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        ((h ^ (h >> 16)) & 0xffff) as usize
    }

    /// The cursor that scans this shard from `position`.
    pub(super) fn cursor(&self, position: u64) -> ScanCursor {
        ScanCursor {
            node: encode(self),
            position,
        }
    }
}

/// [`ScanCursor::node`] of a cluster scan: the shard's first slot in the low 16 bits, the tag
/// of its primary's address above. `ScanCursor::default()` names the shard serving slot 0.
pub(super) fn encode(shard: &Shard) -> usize {
    usize::from(shard.first_slot()) | (shard.tag() << 16)
}

/// The hash slot of `key`: CRC16 (XMODEM) of the key, or of its `{hash tag}` when it has a
/// non-empty one, modulo 16,384 (as the cluster specification defines).
pub(super) fn slot_of(key: &str) -> u16 {
    let key = key.as_bytes();
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &b in hashed {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// Flags that make a node's view of itself or another node unusable for routing.
pub(super) fn unhealthy(flags: &str) -> bool {
    flags
        .split(',')
        .any(|f| matches!(f, "fail" | "fail?" | "noaddr" | "handshake"))
}

/// `ip:port@cport[,hostname]` → (ip, port); `None` when the node has no address yet.
pub(super) fn address(field: &str) -> Option<(String, u16)> {
    let addr = field.split('@').next()?;
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// The address of the node that answered a `CLUSTER NODES` (its `myself` line), for messages.
pub(super) fn answering_node(text: &str) -> String {
    text.lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2)?.split(',').any(|f| f == "myself").then(|| {
                fields
                    .get(1)
                    .map(|a| a.split('@').next().unwrap_or(a).to_owned())
            })?
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// The primaries of one node's `CLUSTER NODES` reply, sorted by first slot, if that view can be
/// used: every slot served exactly once, by a primary that has an address and is not flagged
/// failed. Otherwise why not.
pub(super) fn parse_view(text: &str) -> Result<Vec<Shard>, String> {
    let mut shards = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        let mut slots = Vec::new();
        for token in fields.iter().skip(8).filter(|s| !s.starts_with('[')) {
            let (a, b) = token.split_once('-').unwrap_or((token, token));
            match (a.parse::<u16>(), b.parse::<u16>()) {
                (Ok(a), Ok(b)) if a <= b && u32::from(b) < SLOTS => slots.push((a, b)),
                _ => return Err(format!("unreadable slot range {token:?}")),
            }
        }
        if slots.is_empty() {
            continue;
        }
        if !flags.split(',').any(|f| f == "master") {
            return Err(format!("a node flagged {flags} serves slots"));
        }
        if unhealthy(flags) {
            return Err(format!(
                "slots from {} are served by a primary flagged {flags}",
                slots[0].0
            ));
        }
        let (host, port) =
            address(addr).ok_or_else(|| "a primary serving slots has no address".to_owned())?;
        slots.sort_unstable();
        shards.push(Shard { slots, host, port });
    }
    let mut ranges: Vec<(u16, u16)> = shards.iter().flat_map(|s| s.slots.clone()).collect();
    ranges.sort_unstable();
    let mut next: u32 = 0;
    for (a, b) in ranges {
        match u32::from(a).cmp(&next) {
            std::cmp::Ordering::Less => return Err(format!("slot {a} is served twice")),
            std::cmp::Ordering::Greater => return Err(format!("slot {next} is not served")),
            std::cmp::Ordering::Equal => next = u32::from(b) + 1,
        }
    }
    if next != SLOTS {
        return Err(format!("slot {next} is not served"));
    }
    shards.sort_by_key(Shard::first_slot);
    Ok(shards)
}

/// A primary serving slots, as one node's `CLUSTER NODES` lists it (for `Backend::info`).
pub(super) struct Primary {
    /// The address field as listed (`ip:port@cport[,hostname]`).
    pub(super) address: String,
    /// Its flags, e.g. `master,fail`.
    pub(super) flags: String,
    /// Flagged `fail` or `fail?` (or without address, or in handshake).
    pub(super) failed: bool,
    /// Number of slots it serves.
    pub(super) slots: u32,
}

/// Every primary that serves slots in one node's view, failed ones included, in the order
/// listed; unreadable slot ranges count as none.
pub(super) fn primaries(text: &str) -> Vec<Primary> {
    let mut primaries = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        let mut slots = 0u32;
        for token in fields.iter().skip(8).filter(|s| !s.starts_with('[')) {
            let (a, b) = token.split_once('-').unwrap_or((token, token));
            if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                if a <= b && b < SLOTS {
                    slots += b - a + 1;
                }
            }
        }
        if slots == 0 || !flags.split(',').any(|f| f == "master") {
            continue;
        }
        primaries.push(Primary {
            address: (*addr).to_owned(),
            flags: (*flags).to_owned(),
            failed: unhealthy(flags),
            slots,
        });
    }
    primaries
}

/// The shard named by a cursor's first slot.
pub(super) fn shard_named(shards: &[Shard], first_slot: u16) -> BackendResult<&Shard> {
    match shards.iter().find(|s| s.serves(first_slot)) {
        Some(shard) if shard.first_slot() == first_slot => Ok(shard),
        _ => Err(BackendError::new(
            BackendErrorKind::Other,
            format!(
                "slots moved between primaries during the scan (slot {first_slot}); \
                 start the scan again"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTHY: &str = "a 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922\n\
                           b 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                           c 127.0.0.1:7003@17003 slave a 0 0 2 connected\n\
                           d 127.0.0.1:7002@17002,host.example master - 0 0 3 connected 10923-16383 [5-<-x]\n\
                           e 127.0.0.1:7004@17004 master - 0 0 0 connected\n";

    #[test]
    fn primaries_sorted_by_first_slot() {
        let shards = parse_view(HEALTHY).unwrap();
        let ports: Vec<u16> = shards.iter().map(|s| s.port).collect();
        assert_eq!(ports, [7000, 7001, 7002]);
        assert_eq!(shards[2].host, "127.0.0.1");
        assert_eq!(shards[1].first_slot(), 5461);
        assert_eq!(shards[1].slots, [(5461, 10922)]);
    }

    #[test]
    fn a_primary_with_several_ranges_is_one_shard() {
        let text = "a 127.0.0.1:7001@17001 master - 0 0 2 connected 100-200 0-99 5000\n\
                    b 127.0.0.1:7000@17000 master - 0 0 1 connected 201-4999 5001-16383\n";
        let shards = parse_view(text).unwrap();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].slots, [(0, 99), (100, 200), (5000, 5000)]);
        assert!(shards[0].serves(5000) && !shards[1].serves(5000));
        assert!(shard_named(&shards, 201).is_ok());
        assert!(
            shard_named(&shards, 100).is_err(),
            "not the first slot of its shard"
        );
    }

    #[test]
    fn views_a_scan_must_not_use() {
        let cases = [
            // A node that has not learned the failover yet: the failed primary still has slots.
            (
                "a 127.0.0.1:7000@17000 master,fail? - 0 0 1 connected 0-5460\n\
                 b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-16383\n",
                "flagged master,fail?",
            ),
            (
                "a 127.0.0.1:7000@17000 master,fail - 0 0 1 connected 0-5460\n\
                 b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-16383\n",
                "flagged master,fail",
            ),
            // Old and new primary both listed with the same slots.
            (
                "a 127.0.0.1:7000@17000 master - 0 0 1 connected 0-5460\n\
                 c 127.0.0.1:7003@17003 master - 0 0 4 connected 0-5460\n\
                 b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-16383\n",
                "slot 0 is served twice",
            ),
            // Slots nobody serves (the new primary not listed yet).
            (
                "b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-16383\n",
                "slot 0 is not served",
            ),
            (
                "b 127.0.0.1:7001@17001 master - 0 0 2 connected 0-16382\n",
                "slot 16383 is not served",
            ),
            (
                "a :0@0 master,noaddr - 0 0 1 connected 0-5460\n\
                 b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-16383\n",
                "noaddr",
            ),
            (
                "a 127.0.0.1:7000@17000 slave b 0 0 1 connected 0-5460\n\
                 b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-16383\n",
                "flagged slave serves slots",
            ),
        ];
        for (text, why) in cases {
            let err = parse_view(text).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn primaries_include_failed_ones_with_their_slot_counts() {
        let text = "\
a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected 5461-10922
c 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383 [5-<-x]
d 127.0.0.1:7003@17003 slave a 0 0 1 connected
";
        let found = primaries(text);
        let summary: Vec<(&str, bool, u32)> = found
            .iter()
            .map(|p| (p.address.as_str(), p.failed, p.slots))
            .collect();
        assert_eq!(
            summary,
            [
                ("127.0.0.1:7000@17000", false, 5461),
                ("127.0.0.1:7001@17001", true, 5462),
                ("127.0.0.1:7002@17002", false, 5461),
            ]
        );
    }

    #[test]
    fn the_answering_node_is_named() {
        assert_eq!(answering_node(HEALTHY), "127.0.0.1:7000");
        assert_eq!(answering_node(""), "?");
    }

    #[test]
    fn slots_match_redis_rs() {
        use redis::cluster_routing::Slot;
        assert_eq!(slot_of("123456789"), 0x31c3);
        for key in [
            "foo",
            "sess:abc",
            "{user1000}.following",
            "a{}b",
            "{}x",
            "x{y",
            "é{ü}",
        ] {
            assert_eq!(Slot::new(slot_of(key)), Some(Slot::for_key(key)), "{key}");
        }
        for n in 0..2_000 {
            let key = format!("sess:{n}:{}", n * 7919);
            assert_eq!(Slot::new(slot_of(&key)), Some(Slot::for_key(&key)), "{key}");
        }
        assert_eq!(slot_of("{a}1"), slot_of("{a}2"));
    }

    #[test]
    fn cursor_names_the_shard_by_first_slot_and_notices_address_changes() {
        let a = Shard {
            slots: vec![(5461, 10922)],
            host: "127.0.0.1".into(),
            port: 7000,
        };
        let b = Shard {
            port: 7003,
            ..a.clone()
        };
        assert_eq!(encode(&a) & 0xffff, 5461);
        assert_ne!(encode(&a), encode(&b));
        assert_eq!(encode(&a) & 0xffff, encode(&b) & 0xffff);
    }
}
